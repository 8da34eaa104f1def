//! `nicctl up` shows a progress bar per host whose plan has more than 1,000 commands, when
//! stderr is a terminal (here a pseudo-terminal). Needs root. Names: `pg-*`.
mod common;
use common::{TempFile, Up};

/// One instance, and 20 route tables of 60 blackhole routes: 1,226 commands.
fn big_file() -> String {
    let mut f = String::from("[vpc.pg]\nvni = 71\ncidr = \"10.71.0.0/16\"\n");
    for t in 0..20 {
        let routes: Vec<String> = (0..60)
            .map(|r| {
                format!(
                    "{{ dest = \"172.{}.{r}.0/24\", target = \"blackhole\" }}",
                    16 + t
                )
            })
            .collect();
        f.push_str(&format!(
            "[route_table.pg-rt{t}]\nvpc = \"pg\"\nroutes = [{}]\n",
            routes.join(", ")
        ));
    }
    f.push_str(
        "[subnet.pg-net]\nvpc = \"pg\"\ncidr = \"10.71.1.0/24\"\nroute_table = \"pg-rt0\"\n\
         [instance.pg-a]\nsubnet = \"pg-net\"\nip = \"10.71.1.10\"\n",
    );
    f
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_long_plan_shows_a_bar_for_its_host() {
    let file = TempFile::with("pg", "toml", &big_file());
    let up = Up::start_on_terminal(file.path(), &[]);
    // Stopped, it has ended and the terminal has reached its end (EOF or EIO once the
    // last holder of its other side is gone): the log holds everything it showed.
    let text = up.stop_with(libc::SIGINT);
    assert!(
        text.contains("up: host local: programming 1226 commands"),
        "{text}"
    );
    assert!(text.contains("/1226 commands ("), "a bar was drawn: {text}");
    assert!(
        text.contains("up: host local: 1226 commands programmed"),
        "and replaced by a line when done: {text}"
    );
}
