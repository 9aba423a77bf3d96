//! capture_agent service.
