//! The decoder: unit cases, properties, the reference corpus, Wireshark and tcpdump oracles,
//! fuzz seeds, and the frame JSON codec round trip (one test binary).

mod corpus;
mod decode_support;
mod frame_json;
mod fuzz_seeds;
mod oracles;
mod props;
mod tcpdump;
mod units;
