//! The docs show what the code does.

use vcluster_cli::manifests::rbac_table;

/// docs/security.md lists exactly the host rights `vcluster create` grants
/// with the default configuration.
#[test]
fn security_doc_lists_the_default_roles_rights() {
    let plane = vcluster_cli::config::control_plane("<name>", "<namespace>", None, None)
        .expect("the default control plane");
    let table = rbac_table(&plane);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md"))
        .expect("docs/security.md");
    assert!(
        doc.contains(&table),
        "docs/security.md must contain this table (the default Role and ClusterRole):\n{table}"
    );
}

/// docs/cli.md's table has a row for every subcommand the binary offers.
#[test]
fn cli_doc_has_a_row_per_subcommand() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_vcluster"))
        .arg("--help")
        .output()
        .expect("vcluster --help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let subcommands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(subcommands.contains(&"disconnect"), "{help}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"))
        .expect("docs/cli.md");
    for subcommand in subcommands {
        assert!(
            doc.contains(&format!("| `vcluster {subcommand}")),
            "docs/cli.md has no row for `vcluster {subcommand}`"
        );
    }
}
