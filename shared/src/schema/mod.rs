//! Column schemas: flatten a Frame into one CSV row under a named, versioned column list.
