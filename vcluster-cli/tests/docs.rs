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
