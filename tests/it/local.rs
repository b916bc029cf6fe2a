//! Local faults and output safety (issue 27): outputs that alias each other,
//! and a bad path late on the command line, lose nothing.

use std::process::Stdio;

use crate::support::{Output, bin};

fn trawl(args: &[&str]) -> Output {
    std::process::Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// Regression: `--errors` as a symlink to the `-o` file left 16 lines of 40,
/// 6 torn; `-o` = `--summary`, `--host-stats` on an output and `--errors` =
/// `--summary` were not caught either.
#[test]
fn two_outputs_in_one_file_are_exit_2_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let list = p("list.txt");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let out = p("out.jsonl");
    let kept = "{\"index\":0}\n";
    std::fs::write(&out, kept).unwrap();
    let link = p("link.jsonl");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let new = p("new.jsonl");
    let dotted = format!("{}/./new.jsonl", dir.path().display());
    for args in [
        vec!["-o", &out, "--errors", &link],
        vec!["-o", &out, "--summary", &out],
        vec!["-o", &out, "--host-stats", &link],
        vec!["-o", &out, "--errors", &new, "--summary", &dotted],
        vec!["-o", &new, "--host-stats", &dotted],
    ] {
        let mut argv = vec![list.as_str()];
        argv.extend(&args);
        let run = trawl(&argv);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("are the same file"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "{args:?}");
        assert!(
            !std::path::Path::new(&new).exists(),
            "{args:?}: nothing created"
        );
    }
    // Devices alias nothing: discarding every output is fine (the one input
    // fails to connect: exit 1).
    let run = trawl(&[&list, "-q", "-o", "/dev/null", "--summary", "/dev/null"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}

/// Regression: a `--summary`, `--host-stats`, `--save` or `--errors` path that
/// could not be created was exit 2 after `-o` had been emptied.
#[test]
fn a_bad_late_path_leaves_the_outputs_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let list = p("list.txt");
    std::fs::write(&list, "http://127.0.0.1:1/a\n").unwrap();
    let (out, errors) = (p("out.jsonl"), p("errors.jsonl"));
    let (kept, kept_errors) = ("{\"index\":0}\n", "{\"index\":1}\n");
    let nowhere = p("no-such-dir/x");
    for flag in ["--summary", "--host-stats", "--save", "--errors"] {
        std::fs::write(&out, kept).unwrap();
        std::fs::write(&errors, kept_errors).unwrap();
        let mut argv = vec![list.as_str(), "-o", &out];
        if flag != "--errors" {
            argv.extend(["--errors", &errors]);
        }
        let bad = match flag {
            // A directory cannot be made inside a file.
            "--save" => format!("{out}/dir"),
            _ => nowhere.clone(),
        };
        argv.extend([flag, &bad]);
        let run = trawl(&argv);
        assert_eq!(run.code, Some(2), "{flag}: {}", run.stderr);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "{flag}");
        assert_eq!(
            std::fs::read_to_string(&errors).unwrap(),
            kept_errors,
            "{flag}"
        );
    }
}
