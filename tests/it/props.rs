//! Property tests of the input parser: arbitrary bytes never panic, and splitting
//! into lines agrees with a plain reference split.

use proptest::prelude::*;
use trawl::parse::{Line, MAX_LINE, next_line, parse_line};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_line_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_line(&bytes, Line::Complete);
        let _ = parse_line(&bytes, Line::TooLong(MAX_LINE + 1));
    }

    #[test]
    fn url_like_lines_never_panic(s in "(https?|ftp|[a-z]{1,5}):(//)?[ -~]{0,60}") {
        if let Some((input, _, _)) = parse_line(s.as_bytes(), Line::Complete) {
            prop_assert_eq!(input, s.trim());
        }
    }

    #[test]
    fn json_like_lines_never_panic(s in r#"\{("url"|"id"|"method"|"headers"|"body"|[a-z]{1,4})?:?[ -~]{0,60}\}?"#) {
        let _ = parse_line(s.as_bytes(), Line::Complete);
    }

    #[test]
    fn lines_split_like_a_reference(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..300),
        capacity in 1usize..16,
        max in 1usize..20,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let got = rt.block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(capacity, &bytes[..]);
            let mut buf = Vec::new();
            let mut got = Vec::new();
            while let Some(line) = next_line(&mut reader, &mut buf, max).await.unwrap() {
                got.push((buf.clone(), line));
            }
            got
        });
        let mut reference: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        if bytes.last() == Some(&b'\n') || bytes.is_empty() {
            reference.pop();
        }
        prop_assert_eq!(got.len(), reference.len());
        for ((buf, line), want) in got.iter().zip(reference) {
            let want = want.strip_suffix(b"\r").unwrap_or(want);
            match line {
                Line::Complete => prop_assert_eq!(&buf[..], want),
                Line::TooLong(len) => {
                    prop_assert!(want.len() > max);
                    prop_assert!(*len >= want.len());
                    prop_assert!(buf.len() <= max + 1);
                }
            }
        }
    }
}
