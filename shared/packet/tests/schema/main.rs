//! Column schemas: the netpipe and antinex-v1 rows, the original's golden datasets, the legacy
//! message path, and the frame JSON Schema (one test binary).

mod corpus;
mod frame_schema;
mod golden;
mod legacy;
mod netpipe;
