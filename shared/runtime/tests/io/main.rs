//! Capture files, the dataset writer, the ops HTTP server and the live flow meter on `lo` (one
//! test binary).

mod capture_files;
mod dataset_writer;
mod flow_live_lo;
mod ops_server;
