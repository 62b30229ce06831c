//! A 100k-line configuration is handled (the tree merges through hash indexes, so the work is
//! linear); no timing is asserted here — that is a benchmark's job.

use control::config;

#[test]
fn a_hundred_thousand_lines_in_both_forms() {
    let routes = 50_000;
    let mut curly = String::from("routing-options {\n    static {\n");
    let mut set = String::new();
    for i in 0..routes {
        let (a, b) = (i / 256, i % 256);
        curly.push_str(&format!(
            "        route 10.{a}.{b}.0/24 next-hop 192.0.2.1;\n"
        ));
        set.push_str(&format!(
            "set routing-options static route 10.{a}.{b}.0/24 next-hop 192.0.2.1\n"
        ));
        set.push_str(&format!(
            "set routing-options static route 11.{a}.{b}.0/24 next-hop 192.0.2.2\n"
        ));
    }
    curly.push_str("    }\n}\n");
    curly.push_str(
        &curly
            .clone()
            .replace("route 10.", "route 11.")
            .replace(".1;", ".2;"),
    );
    assert!(curly.lines().count() >= 100_000);
    assert!(set.lines().count() >= 100_000);
    for text in [&curly, &set] {
        let c = config::parse(text).unwrap_or_else(|e| panic!("{}", e.0[0]));
        assert_eq!(c.static_routes.len(), 2 * routes as usize);
    }
    // The same route twice is reported, with the line of the second one.
    let doubled = format!("{set}set routing-options static route 10.0.0.0/24 next-hop 192.0.2.9\n");
    let errors = config::parse(&doubled).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.0[0].pos.line as usize, set.lines().count() + 1);
}
