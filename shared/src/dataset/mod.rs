//! Dataset files: append-only CSV snapshots, fsync before ack, manifests, crash repair.
