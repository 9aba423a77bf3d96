//! processor service.
