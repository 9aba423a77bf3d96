//! Not a test of its own: `DUMP=file.pcap cargo test -p shared --test decode_dump -- --nocapture`
//! prints every decoded frame as JSON, to look at the decoder's output by eye.

mod decode_support;

use shared::decode::DecodeOptions;

#[test]
fn dump_frames_when_asked() {
    let Ok(path) = std::env::var("DUMP") else {
        return;
    };
    let (frames, err) = decode_support::decode_file(path.as_ref(), &DecodeOptions::default());
    for frame in frames {
        println!("{}", serde_json::to_string(&frame).unwrap_or_default());
    }
    if let Some(err) = err {
        println!("file error: {err}");
    }
}
