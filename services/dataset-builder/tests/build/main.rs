//! The dataset-builder: bad input, flow and packet datasets, the original's datasets, metrics,
//! the watch service (one test binary). Tests that need promtool are ignored unless the
//! `system-tests` feature is on (scripts/test.sh turns it on).

mod bad_input;
mod flows;
mod metrics;
mod netpipe_csvs;
mod original_datasets;
mod service;
mod support;
