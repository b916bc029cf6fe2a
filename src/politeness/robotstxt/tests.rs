//! Table-driven cases for every rule of RFC 9309 and every behaviour of
//! Google's parser that trawl follows, each written from the RFC's text and
//! examples or from Google's published documentation.

use super::*;

/// (robots.txt, product token, path, allowed?)
type Case = (&'static str, &'static str, &'static str, bool);

fn check(cases: &[Case]) {
    for &(txt, agent, path, want) in cases {
        let got = RobotsTxt::parse(agent, txt.as_bytes()).allowed(path);
        assert_eq!(got, want, "{agent} {path} under:\n{txt}");
    }
}

const GROUPS: &str = "allow: /foo/bar/\n\nuser-agent: FooBot\ndisallow: /\nallow: /x/\nuser-agent: BarBot\ndisallow: /\nallow: /y/\n\n\nallow: /w/\nuser-agent: BazBot\n\nuser-agent: FooBot\nallow: /z/\ndisallow: /\n";

#[test]
fn groups_are_user_agent_lines_then_rules_and_same_agents_combine() {
    check(&[
        (GROUPS, "FooBot", "/x/b", true),
        (GROUPS, "FooBot", "/z/d", true),
        (GROUPS, "FooBot", "/y/c", false),
        (GROUPS, "BarBot", "/y/c", true),
        // Blank lines end no group: `allow: /w/` is BarBot's.
        (GROUPS, "BarBot", "/w/a", true),
        (GROUPS, "BarBot", "/z/d", false),
        // BazBot shares the group of the FooBot line after it.
        (GROUPS, "BazBot", "/z/d", true),
        // RFC 9309 2.2.2 / item 5: rules before any user-agent line apply to nobody.
        (GROUPS, "FooBot", "/foo/bar/", false),
        (GROUPS, "BarBot", "/foo/bar/", false),
        (GROUPS, "BazBot", "/foo/bar/", false),
        ("disallow: /\n", "FooBot", "/x", true),
        (
            "disallow: /\nuser-agent: *\nallow: /\n",
            "FooBot",
            "/x",
            true,
        ),
    ]);
}

#[test]
fn keys_and_agents_ignore_case_values_do_not() {
    for txt in [
        "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n",
        "uSeR-aGeNt: FooBot\nAlLoW: /x/\ndIsAlLoW: /\n",
        "User-Agent: FOO BAR\nAllow: /x/\nDisallow: /\n",
        "User-Agent: foo bar\nAllow: /x/\nDisallow: /\n",
    ] {
        let foo = if txt.contains("FooBot") {
            "foobot"
        } else {
            "Foo"
        };
        check(&[(txt, foo, "/x/y", true), (txt, foo, "/a/b", false)]);
    }
    check(&[
        (
            "user-agent: FooBot\ndisallow: /x/\n",
            "FooBot",
            "/x/y",
            false,
        ),
        (
            "user-agent: FooBot\ndisallow: /X/\n",
            "FooBot",
            "/x/y",
            true,
        ),
    ]);
}

#[test]
fn the_agent_value_is_cut_at_the_first_character_outside_the_token() {
    // Item 4: `FOO BAR` names FOO, `FooBot/1.0` names FooBot.
    let space = "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n";
    let slash = "User-agent: FooBot/1.0\nDisallow: /private\n";
    check(&[
        (space, "Foo", "/x/y", true),
        (space, "Bar", "/x/y", false),
        (slash, "FooBot", "/private/a", false),
        (slash, "FooBot", "/public", true),
        (slash, "Foo", "/private/a", true),
    ]);
}

#[test]
fn without_a_matching_group_the_star_groups_apply_else_nothing() {
    let global = "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n";
    let specific = "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /\n";
    let star_twice = "user-agent: *\ndisallow: /a\n\nuser-agent: other\ndisallow: /\nuser-agent: *\ndisallow: /b\n";
    check(&[
        ("", "FooBot", "/x/y", true),
        (global, "FooBot", "/x/y", false),
        (global, "BarBot", "/x/y", true),
        (specific, "QuxBot", "/x/y", true),
        // Several `*` groups combine too.
        (star_twice, "QuxBot", "/a", false),
        (star_twice, "QuxBot", "/b", false),
        (star_twice, "QuxBot", "/c", true),
        // The specific group replaces `*` entirely.
        (
            "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n",
            "FooBot",
            "/x/page",
            true,
        ),
    ]);
}

#[test]
fn the_longest_match_wins_and_allow_wins_a_tie() {
    let u = "user-agent: FooBot\n";
    let t = |rules: &str| -> &'static str { Box::leak(format!("{u}{rules}").into_boxed_str()) };
    check(&[
        (
            t("disallow: /x/page.html\nallow: /x/\n"),
            "FooBot",
            "/x/page.html",
            false,
        ),
        (
            t("allow: /x/page.html\ndisallow: /x/\n"),
            "FooBot",
            "/x/page.html",
            true,
        ),
        (
            t("allow: /x/page.html\ndisallow: /x/\n"),
            "FooBot",
            "/x/",
            false,
        ),
        (t("disallow: \nallow: \n"), "FooBot", "/x/page.html", true),
        (t("disallow: /\nallow: /\n"), "FooBot", "/x/page.html", true),
        (t("disallow: /x\nallow: /x/\n"), "FooBot", "/x", false),
        (t("disallow: /x\nallow: /x/\n"), "FooBot", "/x/", true),
        (
            t("allow: /page\ndisallow: /*.html\n"),
            "FooBot",
            "/page.html",
            false,
        ),
        (
            t("allow: /page\ndisallow: /*.html\n"),
            "FooBot",
            "/page",
            true,
        ),
        (
            t("allow: /x/page.\ndisallow: /*.html\n"),
            "FooBot",
            "/x/page.html",
            true,
        ),
        (
            t("allow: /x/page.\ndisallow: /*.html\n"),
            "FooBot",
            "/x/y.html",
            false,
        ),
        (t("allow: /p\ndisallow: /\n"), "FooBot", "/page", true),
        (
            t("allow: /folder\ndisallow: /folder\n"),
            "FooBot",
            "/folder/page",
            true,
        ),
        (t("allow: /$\ndisallow: /\n"), "FooBot", "/", true),
        (t("allow: /$\ndisallow: /\n"), "FooBot", "/page.html", false),
    ]);
}

#[test]
fn star_matches_any_run_and_a_final_dollar_anchors() {
    let u = "user-agent: FooBot\ndisallow: /\n";
    let t = |rule: &str| -> &'static str { Box::leak(format!("{u}{rule}").into_boxed_str()) };
    let php = t("allow: /*.php\n");
    let php_end = t("allow: /*.php$\n");
    let fish = t("allow: /fish\n");
    let fish_star = t("allow: /fish*\n");
    let fish_dir = t("allow: /fish/\n");
    let fish_php = t("allow: /fish*.php\n");
    check(&[
        (fish, "FooBot", "/fish", true),
        (fish, "FooBot", "/fish.html?id=anything", true),
        (fish, "FooBot", "/fishheads/yummy.html", true),
        (fish, "FooBot", "/Fish.asp", false),
        (fish, "FooBot", "/catfish", false),
        (fish, "FooBot", "/?id=fish", false),
        (fish_star, "FooBot", "/fish/salmon.html", true),
        (fish_star, "FooBot", "/catfish", false),
        (fish_dir, "FooBot", "/fish/?salmon", true),
        (fish_dir, "FooBot", "/fish", false),
        (fish_dir, "FooBot", "/Fish/Salmon.html", false),
        (php, "FooBot", "/folder/filename.php?parameters", true),
        (php, "FooBot", "//folder/any.php.file.html", true),
        (php, "FooBot", "/index?f=filename.php/", true),
        (php, "FooBot", "/php/", false),
        (php, "FooBot", "/windows.PHP", false),
        (php_end, "FooBot", "/folder/filename.php", true),
        (php_end, "FooBot", "/filename.php?parameters", false),
        (php_end, "FooBot", "/filename.php/", false),
        (php_end, "FooBot", "/filename.php5", false),
        (
            fish_php,
            "FooBot",
            "/fishheads/catfish.php?parameters",
            true,
        ),
        (fish_php, "FooBot", "/Fish.PHP", false),
        (
            "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n",
            "FooBot",
            "/foo/bar/quz",
            false,
        ),
        (
            "User-agent: FooBot\nDisallow: /foo/bar$\n",
            "FooBot",
            "/foo/bar",
            false,
        ),
        (
            "User-agent: FooBot\nDisallow: /foo/bar$\n",
            "FooBot",
            "/foo/bar/",
            true,
        ),
        // `#` starts a comment, in a rule too.
        (
            "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n",
            "FooBot",
            "/foo/quz",
            false,
        ),
        // `$` not at the end is a literal.
        (
            "User-agent: FooBot\nDisallow: /a$b\n",
            "FooBot",
            "/a$b/c",
            false,
        ),
    ]);
}

#[test]
fn percent_encoding_is_normalised_on_both_sides() {
    let t = |rule: &str| -> &'static str {
        Box::leak(format!("User-agent: FooBot\nDisallow: /\nAllow: {rule}\n").into_boxed_str())
    };
    check(&[
        (
            t("/foo/bar?qux=taz&baz=http://foo.bar?tar&par"),
            "FooBot",
            "/foo/bar?qux=taz&baz=http://foo.bar?tar&par",
            true,
        ),
        // Non-ASCII in a rule is encoded; URLs reach the matcher encoded.
        (t("/foo/bar/ツ"), "FooBot", "/foo/bar/%E3%83%84", true),
        (
            t("/foo/bar/%E3%83%84"),
            "FooBot",
            "/foo/bar/%E3%83%84",
            true,
        ),
        // Item 6: `%aa` equals `%AA`.
        (t("/a/%e3%83%84"), "FooBot", "/a/%E3%83%84", true),
        (t("/a/%E3%83%84"), "FooBot", "/a/%e3%83%84", true),
        // RFC 9309 2.2.2: unreserved characters compare decoded (Google compares
        // the text as written here; trawl follows the RFC).
        (t("/foo/bar/%62%61%7A"), "FooBot", "/foo/bar/baz", true),
        (t("/foo/bar/baz"), "FooBot", "/foo/bar/%62%61%7A", true),
        // Reserved characters stay escaped: %2F is not a path separator.
        (t("/a%2Fb"), "FooBot", "/a/b", false),
        (t("/a%2Fb"), "FooBot", "/a%2fb", true),
        // %2A and %24 in a rule are a literal `*` and `$`, not a wildcard or anchor.
        (t("/a%2Ab"), "FooBot", "/a*b", true),
        (t("/a%2Ab"), "FooBot", "/axxb", false),
        (t("/a%24"), "FooBot", "/a$", true),
        (t("/a%24"), "FooBot", "/a", false),
    ]);
}

#[test]
fn index_html_allows_its_directory() {
    // Item 7: Google treats `.../index.html` as the directory.
    let txt = "User-Agent: *\nAllow: /allowed-slash/index.html\nDisallow: /\n";
    check(&[
        (txt, "foobot", "/allowed-slash/", true),
        (txt, "foobot", "/allowed-slash/index.htm", false),
        (txt, "foobot", "/allowed-slash/index.html", true),
        (txt, "foobot", "/allowed-slash/other", false),
        (txt, "foobot", "/anyother-url", false),
    ]);
}

#[test]
fn line_syntax_endings_bom_and_a_missing_colon() {
    check(&[
        ("user-agent FooBot\ndisallow /\n", "FooBot", "/x/y", false),
        ("foo: FooBot\nbar: /\n", "FooBot", "/x/y", true),
        ("User-Agent: foo\r\nDisallow: /a\r\n", "foo", "/a", false),
        ("User-Agent: foo\rDisallow: /a\r", "foo", "/a", false),
        ("User-Agent: foo\nDisallow: /a", "foo", "/a", false),
        ("user-agent: FooBot\ndissallow: /\n", "FooBot", "/x", false),
        // /robots.txt itself is always allowed.
        (
            "user-agent: *\ndisallow: /\n",
            "FooBot",
            "/robots.txt",
            true,
        ),
    ]);
    for bom in [&b"\xEF\xBB\xBF"[..], b"\xEF\xBB", b"\xEF"] {
        let txt = [bom, b"User-Agent: foo\nDisallow: /a\n"].concat();
        assert!(!RobotsTxt::parse("foo", &txt).allowed("/a"), "{bom:?}");
    }
    // Item 8: a broken BOM spoils only the first line, as in the reference.
    let broken = b"\xEF\x11\xBFUser-Agent: foo\nDisallow: /a\n";
    assert!(RobotsTxt::parse("foo", broken).allowed("/a"), "no group");
    let broken = b"\xEF\x11\xBF\nUser-Agent: foo\nDisallow: /a\n";
    assert!(!RobotsTxt::parse("foo", broken).allowed("/a"));
}

#[test]
fn long_lines_are_cut_not_dropped() {
    // Item 8: past MAX_LINE bytes a line is cut, and what is left still counts.
    let head = "disallow: ";
    let long = format!("/x/{}", "a".repeat(MAX_LINE));
    let txt = format!("user-agent: FooBot\n{head}{long}/qux\n");
    let kept = &format!("{head}{long}")[..MAX_LINE][head.len()..];
    let parsed = RobotsTxt::parse("FooBot", txt.as_bytes());
    assert!(parsed.allowed("/fux"));
    assert!(!parsed.allowed(&format!("{kept}/fux")));
    let txt = format!("user-agent: FooBot\ndisallow: /\nallow: {long}/qux\n");
    let parsed = RobotsTxt::parse("FooBot", txt.as_bytes());
    assert!(!parsed.allowed("/"));
    let kept = &format!("allow: {long}")[..MAX_LINE]["allow: ".len()..];
    assert!(parsed.allowed(&format!("{kept}/fux")));
}

#[test]
fn crawl_delay_of_the_applicable_group() {
    let txt = "User-agent: trawl\nCrawl-delay: 2\nDisallow: /p\n\nUser-agent: *\nCrawl-delay: 9\n";
    assert_eq!(
        RobotsTxt::parse("trawl", txt.as_bytes()).crawl_delay(),
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        RobotsTxt::parse("other", txt.as_bytes()).crawl_delay(),
        Some(Duration::from_secs(9))
    );
    let bad = "User-agent: *\nCrawl-delay: soon\n";
    assert_eq!(RobotsTxt::parse("x", bad.as_bytes()).crawl_delay(), None);
}
