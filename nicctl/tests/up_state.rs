//! `nicctl up` records what it makes: a killed one's leftovers are removed by the next, a
//! running one's names are refused to another, and a stopped one leaves nothing. Needs
//! root. Names: `st-*`.
mod common;
use common::{exec_in, netns_exists, TempFile, Up};
use nicctl::up::state::Registry;

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
    exec_in(from, "ping", &["-c", "1", "-W", "2", to])
        .status
        .success()
}

fn state_files_of(pid: u32) -> Vec<std::path::PathBuf> {
    Registry::default()
        .records()
        .into_iter()
        .filter(|(_, r)| r.pid == pid)
        .map(|(p, _)| p)
        .collect()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_killed_up_is_cleaned_by_the_next_and_a_running_one_keeps_its_names() {
    need_root!();
    let file = TempFile::with("st-one", "toml", ONE);
    let mut first = Up::start(file.path(), &[]);
    let pid = first.pid().unwrap();
    let state = state_files_of(pid);
    assert_eq!(state.len(), 1, "one state file for pid {pid}");
    let record = Registry::default()
        .records()
        .into_iter()
        .find(|(_, r)| r.pid == pid)
        .unwrap()
        .1;
    let mut names = record.namespaces.clone();
    names.sort();
    assert_eq!(names[..3], ["st-a", "st-b", "st-gw"]);
    assert!(record.underlay.starts_with("vpcnic_ul_"), "{record:?}");
    assert_eq!(record.socket.as_deref(), Some(first.socket.path()));
    assert!(ping("st-a", "10.31.1.11"));
    assert!(ping("st-a", "198.51.100.31"));

    // A second `up` that needs st-b is refused, and the first is not disturbed.
    let other = TempFile::with("st-other", "toml", OVERLAPPING);
    let err = Up::try_start(other.path(), &[]).err().expect("refused");
    assert!(
        err.contains(&format!(
            "namespace st-b belongs to a running `nicctl up` (pid {pid}, file {}); stop it \
             first (kill -INT {pid})",
            file.str()
        )),
        "{err}"
    );
    assert!(!netns_exists("st-c"), "the refused up made nothing");
    assert!(ping("st-a", "10.31.1.11"), "the running one still works");

    // Killed without a chance to clean up: everything stays behind...
    first.signal(libc::SIGKILL);
    for ns in &record.namespaces {
        assert!(netns_exists(ns), "{ns} left behind");
    }
    assert!(state[0].exists());

    // ... until the next `up`, which removes it and comes up in its place.
    let second = Up::start(file.path(), &[]);
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
    assert!(!netns_exists(&record.underlay), "the dead underlay is gone");
    assert!(ping("st-b", "10.31.1.10"));
    assert!(ping("st-b", "198.51.100.31"));

    // Stopped as a user would: nothing is left.
    let pid2 = second.pid().unwrap();
    let underlay2 = Registry::default()
        .records()
        .into_iter()
        .find(|(_, r)| r.pid == pid2)
        .unwrap()
        .1
        .underlay;
    drop(second);
    for ns in ["st-a", "st-b", "st-gw", underlay2.as_str()] {
        assert!(!netns_exists(ns), "{ns} removed");
    }
    assert!(state_files_of(pid2).is_empty(), "state file removed");
}
