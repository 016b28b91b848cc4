use super::*;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo::new(name, groups)
}

fn res(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes::resource(verb, group, resource, ns, name)
}

fn level(policy: &Policy, user: &UserInfo, a: &Attributes) -> Level {
    policy.evaluate(user, a).level
}

fn policy(rules: &str) -> Policy {
    Policy::parse(&format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}"
    ))
    .expect("valid policy")
}

#[test]
fn no_match_is_level_none_and_first_match_wins() {
    let p =
        policy("- level: RequestResponse\n  users: [alice]\n- level: Metadata\n- level: Request\n");
    let a = res("get", "", "pods", "default", "web");
    assert_eq!(level(&p, &user("alice", &[]), &a), Level::RequestResponse);
    assert_eq!(level(&p, &user("bob", &[]), &a), Level::Metadata);
    let none = policy("- level: Request\n  users: [alice]\n");
    let config = none.evaluate(&user("bob", &[]), &a);
    assert_eq!(config.level, Level::None);
    assert!(!config.logs(Stage::ResponseComplete));
}

#[test]
fn users_groups_and_verbs() {
    let p = policy(
        "- level: Request\n  userGroups: [devs]\n  verbs: [create, delete]\n- level: None\n",
    );
    let dev = user("carol", &["devs"]);
    assert_eq!(
        level(&p, &dev, &res("create", "", "pods", "a", "")),
        Level::Request
    );
    assert_eq!(
        level(&p, &dev, &res("get", "", "pods", "a", "x")),
        Level::None
    );
    assert_eq!(
        level(
            &p,
            &user("dan", &["ops"]),
            &res("create", "", "pods", "a", "")
        ),
        Level::None
    );
}

#[test]
fn resources_subresources_and_names() {
    let p = policy(
        "- level: RequestResponse\n  resources:\n  - group: \"\"\n    resources: [pods/log]\n\
         - level: Request\n  resources:\n  - group: apps\n    resources: [\"*/scale\"]\n\
         - level: Metadata\n  resources:\n  - group: \"\"\n    resources: [configmaps]\n    resourceNames: [settings]\n\
         - level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"secrets/*\"]\n\
         - level: Request\n  resources:\n  - group: batch\n",
    );
    let u = user("u", &[]);
    assert_eq!(
        level(&p, &u, &res("get", "", "pods/log", "a", "web")),
        Level::RequestResponse
    );
    assert_eq!(
        level(&p, &u, &res("get", "", "pods", "a", "web")),
        Level::None
    );
    assert_eq!(
        level(
            &p,
            &u,
            &res("update", "apps", "deployments/scale", "a", "d")
        ),
        Level::Request
    );
    assert_eq!(
        level(&p, &u, &res("update", "apps", "deployments", "a", "d")),
        Level::None
    );
    assert_eq!(
        level(&p, &u, &res("get", "", "configmaps", "a", "settings")),
        Level::Metadata
    );
    assert_eq!(
        level(&p, &u, &res("get", "", "configmaps", "a", "other")),
        Level::None
    );
    assert_eq!(
        level(&p, &u, &res("get", "", "secrets", "a", "s")),
        Level::Metadata
    );
    assert_eq!(
        level(&p, &u, &res("list", "batch", "jobs", "a", "")),
        Level::Request
    );
    let star = policy("- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"*\"]\n");
    assert_eq!(
        level(&star, &u, &res("get", "", "pods/status", "a", "p")),
        Level::Metadata
    );
    assert_eq!(
        level(&star, &u, &res("get", "apps", "deployments", "a", "p")),
        Level::None
    );
}

#[test]
fn namespaces_and_non_resource_urls() {
    let p = policy(
        "- level: Request\n  namespaces: [\"\", kube-system]\n\
         - level: Metadata\n  nonResourceURLs: [/healthz, \"/apis*\"]\n\
         - level: RequestResponse\n  nonResourceURLs: [\"*\"]\n  verbs: [post]\n",
    );
    let u = user("u", &[]);
    assert_eq!(
        level(&p, &u, &res("get", "", "nodes", "", "n")),
        Level::Request
    );
    assert_eq!(
        level(&p, &u, &res("get", "", "pods", "kube-system", "p")),
        Level::Request
    );
    assert_eq!(
        level(&p, &u, &res("get", "", "pods", "default", "p")),
        Level::None
    );
    let path = |verb: &str, path: &str| Attributes::non_resource(verb, path);
    assert_eq!(level(&p, &u, &path("get", "/healthz")), Level::Metadata);
    assert_eq!(level(&p, &u, &path("get", "/healthz/etcd")), Level::None);
    assert_eq!(
        level(&p, &u, &path("get", "/apis/apps/v1")),
        Level::Metadata
    );
    assert_eq!(
        level(&p, &u, &path("post", "/anything")),
        Level::RequestResponse
    );
    // A resource rule never matches a non-resource request, nor the reverse.
    let r = policy("- level: Request\n  resources: [{group: \"\"}]\n- level: Metadata\n  nonResourceURLs: [\"*\"]\n");
    assert_eq!(level(&r, &u, &path("get", "/version")), Level::Metadata);
    assert_eq!(
        level(&r, &u, &res("get", "apps", "deployments", "a", "d")),
        Level::None
    );
}

#[test]
fn omit_stages_and_managed_fields_combine() {
    let p = Policy::parse(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n\
         omitManagedFields: true\nrules:\n\
         - level: Metadata\n  users: [a]\n  omitStages: [ResponseStarted]\n  omitManagedFields: false\n\
         - level: Metadata\n",
    )
    .expect("valid");
    let a = res("get", "", "pods", "x", "y");
    let first = p.evaluate(&user("a", &[]), &a);
    assert_eq!(
        first.omit_stages,
        [Stage::RequestReceived, Stage::ResponseStarted]
    );
    assert!(!first.omit_managed_fields);
    assert!(first.logs(Stage::ResponseComplete) && !first.logs(Stage::ResponseStarted));
    let second = p.evaluate(&user("b", &[]), &a);
    assert_eq!(second.omit_stages, [Stage::RequestReceived]);
    assert!(second.omit_managed_fields);
}

#[test]
fn json_policies_parse_and_bad_ones_say_why() {
    let json = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata"}]}"#;
    assert_eq!(Policy::parse(json).expect("json").rules.len(), 1);
    let err = |text: &str| Policy::parse(text).expect_err(text).to_string();
    let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
    assert!(err(&format!("{head}rules: []")).contains("no rules"));
    assert!(err(&format!("{head}rules:\n- level: Loud\n")).contains("unknown variant `Loud`"));
    assert!(err(&format!("{head}rules:\n- level: None\n  user: [a]\n"))
        .contains("unknown field `user`"));
    assert!(err("apiVersion: v1\nkind: Policy\nrules: [{level: None}]").contains("apiVersion"));
    assert!(err(&format!(
        "{head}rules:\n- level: None\n  nonResourceURLs: [/a]\n  namespaces: [b]\n"
    ))
    .contains("rules[0]"));
    assert!(err(&format!(
        "{head}rules:\n- level: None\n  nonResourceURLs: [\"/a*b\"]\n"
    ))
    .contains("at the end"));
    assert!(err(&format!(
        "{head}rules:\n- level: None\n  omitStages: [Later]\n"
    ))
    .contains("Later"));
}
