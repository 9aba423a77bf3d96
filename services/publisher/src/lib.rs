//! publisher service.
