//! Commit checks beyond the `examples/broken` files: each rule gets a one-edit variant of a
//! valid configuration and must report its message at the edited line.

use control::config;

const BASE: &str = include_str!("../../examples/sg1-policy-shared.conf");

/// Applies `from` → `to` once to the base configuration and returns the errors, checking the
/// base itself is clean and that the edit applied.
fn errors_after(from: &str, to: &str) -> Vec<(u32, String)> {
    assert!(config::parse(BASE).is_ok());
    assert!(BASE.contains(from), "edit anchor {from:?} not in the base");
    let text = BASE.replacen(from, to, 1);
    match config::parse(&text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| (e.pos.line, e.message.clone()))
            .collect(),
    }
}

/// The 1-based line where `needle` first occurs in the edited text.
fn line_of(from: &str, to: &str, needle: &str) -> u32 {
    let text = BASE.replacen(from, to, 1);
    let at = text.find(needle).expect("needle");
    text[..at].matches('\n').count() as u32 + 1
}

fn expect_one(from: &str, to: &str, needle: &str, message: &str) {
    let errors = errors_after(from, to);
    let line = line_of(from, to, needle);
    assert!(
        errors.len() == 1 && errors[0].0 == line && errors[0].1.contains(message),
        "expected line {line}: {message:?}\n got {errors:#?}"
    );
}

const UNIT2: &str =
    "        unit 2 {\n            family inet;\n            service-domain outside;\n";
const OPTIONS: &str = "            ike-access-profile demo-access-profile;\n";

#[test]
fn service_domain_and_dial_options_only_on_services_units() {
    expect_one(
        "                address 172.16.1.1/24;\n            }\n",
        "                address 172.16.1.1/24;\n            }\n            service-domain inside;\n",
        "service-domain inside;\n        }\n    }\n    sp-1/2/0",
        "service-domain belongs on services",
    );
}

#[test]
fn services_units_need_the_matching_domain() {
    expect_one(
        UNIT2,
        "        unit 2 {\n            family inet;\n            service-domain inside;\n",
        "outside-service-interface sp-1/2/0.2",
        "needs 'service-domain outside'",
    );
}

#[test]
fn df_bit_modes_and_anti_replay_exclude_each_other() {
    let errors = errors_after(
        OPTIONS,
        "            ike-access-profile demo-access-profile;\n            clear-dont-fragment-bit;\n            set-dont-fragment-bit;\n            no-anti-replay;\n            anti-replay-window-size 128;\n",
    );
    let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().any(
        |m| m.contains("clear-dont-fragment-bit and set-dont-fragment-bit exclude each other")
    ));
    assert!(messages
        .iter()
        .any(|m| m.contains("anti-replay-window-size and no-anti-replay")));
}

#[test]
fn local_gateway_must_be_ours() {
    expect_one(
        "local-gateway 10.1.1.1;",
        "local-gateway 10.1.1.9;",
        "10.1.1.9",
        "local-gateway 10.1.1.9 is not an address of any configured interface",
    );
}

#[test]
fn a_profile_needs_a_local_gateway() {
    expect_one(
        "            local-gateway 10.1.1.1;\n",
        "",
        "ike-access-profile demo-access-profile;\n        }",
        "needs ipsec-vpn-options local-gateway",
    );
}

#[test]
fn an_inside_interface_serves_one_service_set() {
    let second = "    service-set second {\n        next-hop-service {\n            inside-service-interface sp-1/2/0.1;\n            outside-service-interface sp-1/2/0.2;\n        }\n    }\n}\nrouting-options";
    expect_one(
        "}\nrouting-options",
        second,
        "sp-1/2/0.1;\n            outside-service-interface sp-1/2/0.2;\n        }\n    }\n}",
        "already used by service set demo-service-set",
    );
}

#[test]
fn encrypted_junos_keys_are_refused_not_taken_literally() {
    expect_one(
        "\"dyntun-demo-global-key\"",
        "\"$9$abcdefg\"",
        "\"$9$",
        "Junos-encrypted ($9$) keys are not supported",
    );
}

#[test]
fn hexadecimal_keys_must_be_hex() {
    expect_one(
        "ascii-text \"dyntun-demo-global-key\"",
        "hexadecimal 0x12345g",
        "0x12345g",
        "only the digits",
    );
}

#[test]
fn ams_interfaces_need_mams_members() {
    expect_one(
        "    sp-1/2/0 {\n",
        "    ams1 {\n        load-balancing-options {\n            member-interface ms-1/0/0;\n        }\n    }\n    sp-1/2/0 {\n",
        "ms-1/0/0",
        "should be a mams- interface",
    );
    expect_one(
        "    sp-1/2/0 {\n",
        "    ams1;\n    sp-1/2/0 {\n",
        "ams1",
        "an ams interface needs load-balancing-options member-interface",
    );
}

#[test]
fn every_physical_interface_needs_a_device_once_any_has_one() {
    expect_one(
        "    interface ge-0/0/1 {\n        device \"net_af_packet1,iface=sg1-in\";\n    }\n",
        "",
        "ge-0/0/1 {",
        "needs 'dataplane interface ge-0/0/1 device",
    );
}

#[test]
fn pics_are_interfaces_and_stay_off_the_control_core() {
    expect_one(
        "pic sp-1/2/0 {\n        cores 1;",
        "pic sp-1/2/0 {\n        cores [ 0 1 ];",
        "pic sp-1/2/0",
        "polls on the control-core",
    );
    expect_one(
        "pic sp-1/2/0 {",
        "pic sp-1/2/0 {\n    }\n    pic sp-1/3/0 {\n        cores 1;\n    }\n    pic sp-1/2/0 {",
        "pic sp-1/3/0",
        "neither a configured interface",
    );
    expect_one(
        "pic sp-1/2/0 {",
        "pic ge-0/0/0 {\n        cores 1;\n    }\n    pic sp-1/2/0 {",
        "pic ge-0/0/0",
        "should be a services PIC",
    );
}

#[test]
fn ipsec_proposals_are_consistent() {
    let ipsec = "services {\n    ipsec-vpn {\n        ipsec {\n            proposal gcm {\n                encryption-algorithm aes-256-gcm;\n                authentication-algorithm hmac-sha1-96;\n            }\n            proposal ah {\n                protocol ah;\n                encryption-algorithm aes-128-cbc;\n            }\n        }\n    }\n";
    let errors = errors_after("services {\n", ipsec);
    let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("GCM authenticates by itself"));
    assert!(messages[1].contains("an AH proposal has no encryption-algorithm"));
}

#[test]
fn certificate_proposals_need_a_local_certificate() {
    let ike = "services {\n    ipsec-vpn {\n        ike {\n            proposal rsa {\n                authentication-method rsa-signatures;\n            }\n            policy certs {\n                proposals rsa;\n                remote-id {\n                    any-remote-id;\n                }\n            }\n        }\n    }\n";
    expect_one(
        "services {\n",
        ike,
        "policy certs",
        "signature proposals (rsa-signatures, ecdsa-signatures-*) need local-certificate",
    );
    let with_cert = ike.replace(
        "proposals rsa;",
        "proposals rsa;\n                local-certificate sg1-cert;",
    );
    assert!(errors_after("services {\n", &with_cert).is_empty());
}

#[test]
fn unknown_values_list_the_valid_ones() {
    expect_one(
        "service-domain outside;",
        "service-domain sideways;",
        "sideways",
        "'sideways' is not a valid service-domain; expected one of: inside, outside",
    );
}

#[test]
fn a_unit_in_a_missing_interface_is_named() {
    expect_one(
        "outside-service-interface sp-1/2/0.2;",
        "outside-service-interface sp-7/7/7.2;",
        "sp-7/7/7.2",
        "names interface sp-7/7/7 which is not configured",
    );
}

#[test]
fn interface_style_service_set_takes_a_bare_interface_as_unit_zero() {
    let text = BASE.replacen(
        "        next-hop-service {\n            inside-service-interface sp-1/2/0.1;\n            outside-service-interface sp-1/2/0.2;\n        }\n",
        "        interface-service {\n            service-interface sp-1/2/0;\n        }\n",
        1,
    );
    assert_ne!(text, BASE);
    let c = config::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let view = c.service_set("demo-service-set").unwrap();
    assert_eq!(
        view.set.kind,
        config::ServiceSetKind::Interface {
            service_interface: config::UnitName::new("sp-1/2/0", 0)
        }
    );
    assert_eq!(
        view.reverse_route_table, None,
        "reverse routes are for next-hop style only"
    );
}

#[test]
fn ike_version_two_is_not_supported() {
    let ike = "services {\n    ipsec-vpn {\n        ike {\n            policy v2 {\n                version 2;\n            }\n        }\n    }\n";
    expect_one(
        "services {\n",
        ike,
        "version 2",
        "version '2' is not supported by dyntun",
    );
    let v1 = ike.replace("version 2", "version 1");
    assert!(errors_after("services {\n", &v1).is_empty());
}
