//! Brokers: publish batches of frames/rows and consume them with acknowledgement.
