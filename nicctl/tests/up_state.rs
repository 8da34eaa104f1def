//! `nicctl up` records what it makes: a killed one's leftovers are removed by the next, a
//! running one's names are refused to another, and a stopped one leaves nothing. Needs
//! root. Names: `st-*`.
mod common;
use common::up::state_files_of;
use common::{namespace_exists, nicctl, run_in, TempFile, Up};

const ONE: &str = r#"
[vpc.st]
vni = 31
cidr = "10.31.0.0/16"

[gateway.st-gw]
kind = "internet"
hosts = ["198.51.100.31/24"]

[route_table.st-rt]
vpc = "st"
routes = [{ dest = "0.0.0.0/0", target = "st-gw" }]

[subnet.st-net]
vpc = "st"
cidr = "10.31.1.0/24"
route_table = "st-rt"

[instance.st-a]
subnet = "st-net"
ip = "10.31.1.10"

[instance.st-b]
subnet = "st-net"
ip = "10.31.1.11"
"#;

/// Another file that needs `st-b` too.
const OVERLAPPING: &str = r#"
[vpc.other]
vni = 32
cidr = "10.32.0.0/16"

[subnet.o]
vpc = "other"
cidr = "10.32.1.0/24"

[instance.st-c]
subnet = "o"
ip = "10.32.1.10"

[instance.st-b]
subnet = "o"
ip = "10.32.1.11"
"#;

fn ping(from: &str, to: &str) -> bool {
    run_in(from, &["ping", "-c", "1", "-W", "2", to]).ok()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_killed_up_is_cleaned_by_the_next_and_a_running_one_keeps_its_names() {
    let file = TempFile::with("st-one", "toml", ONE);
    let first = Up::start(file.path(), &[]);
    let pid = first.pid();
    let state = state_files_of(pid);
    assert_eq!(state.len(), 1, "one state file for pid {pid}");
    let record = first.record();
    let mut names = record.namespaces.clone();
    names.sort();
    assert_eq!(names[..3], ["st-a", "st-b", "st-gw"]);
    assert!(record.underlay.starts_with("vpcnic_ul_"), "{record:?}");
    assert_eq!(record.socket.as_deref(), Some(first.socket()));
    assert!(ping("st-a", "10.31.1.11"));
    assert!(ping("st-a", "198.51.100.31"));

    // A second `up` that needs st-b is refused, and the first is not disturbed.
    let other = TempFile::with("st-other", "toml", OVERLAPPING);
    let refused = nicctl(&["up", other.str()]);
    assert!(!refused.stdout.contains("ready"), "{}", refused.text());
    let err = refused.expect_err();
    assert!(
        err.contains(&format!(
            "namespace st-b belongs to a running `nicctl up` (pid {pid}, file {}); stop it \
             first (kill -INT {pid})",
            file.str()
        )),
        "{err}"
    );
    assert!(!namespace_exists("st-c"), "the refused up made nothing");
    assert!(ping("st-a", "10.31.1.11"), "the running one still works");

    // Killed without a chance to clean up: everything stays behind...
    let leftovers = first.kill_hard();
    for ns in &record.namespaces {
        assert!(namespace_exists(ns), "{ns} left behind");
    }
    assert!(state[0].exists());
    // The commands say it died, rather than show a fresh simulator's zeros.
    let err = nicctl(&["stats"]).expect_err();
    assert!(
        err.contains(&format!(
            "no `nicctl up` is running: the last one (pid {pid}, {}) died",
            file.str()
        )),
        "{err}"
    );

    // ... until the next `up`, which removes it and comes up in its place.
    let second = Up::start_after(leftovers, file.path(), &[]);
    let said = second.stderr();
    assert!(
        said.contains(&format!(
            "up: removed what a killed `nicctl up` (pid {pid}, {}) left behind: namespaces \
             st-a, st-b, st-gw, {}",
            file.str(),
            record.underlay
        )),
        "{said}"
    );
    assert!(!state[0].exists(), "the dead state file is gone");
    assert!(
        !namespace_exists(&record.underlay),
        "the dead underlay is gone"
    );
    assert!(ping("st-b", "10.31.1.10"));
    assert!(ping("st-b", "198.51.100.31"));

    // Stopped as a user would: nothing is left.
    let pid2 = second.pid();
    let underlay2 = second.underlay();
    second.stop_with(libc::SIGINT);
    for ns in ["st-a", "st-b", "st-gw", underlay2.as_str()] {
        assert!(!namespace_exists(ns), "{ns} removed");
    }
    assert!(state_files_of(pid2).is_empty(), "state file removed");
}

/// A namespace that happens to carry an instance's name, or an `/etc/netns` entry `--dhcp`
/// would write, is someone else's: `up` refuses to start, naming each, and touches neither.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces (CI runs it as root)"
)]
fn up_refuses_to_take_a_namespace_or_file_it_did_not_make() {
    let file = TempFile::with("st-foreign", "toml", ONE);
    // Holds the deployments' lock while it lives.
    let ns = common::TempNamespaces::create(&["st-b"]);
    // Something of the owner's runs in it.
    let owner = common::Bg::spawn(Some("st-b"), &["sleep", "60"]);
    let dir = std::path::Path::new("/etc/netns/st-a");
    let _ = std::fs::create_dir_all(dir);
    std::fs::write(dir.join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    let err = nicctl(&["up", file.str(), "--dhcp"]).expect_err();
    let kept = std::fs::read_to_string(dir.join("resolv.conf")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        err.contains("a network namespace named st-b exists and is not a leftover of nicctl up"),
        "{err}"
    );
    assert!(
        err.contains("/etc/netns/st-a exists and is not a leftover of nicctl up"),
        "{err}"
    );
    assert_eq!(kept, "nameserver 192.0.2.53\n", "--dhcp overwrote it");
    assert!(
        namespace_exists("st-b"),
        "the owner's namespace was deleted"
    );
    assert!(
        run_in("st-b", &["true"]).ok(),
        "the owner's namespace is not usable any more"
    );
    assert!(
        !namespace_exists("st-a"),
        "up made a namespace before refusing"
    );
    drop(owner);
    drop(ns);
}
