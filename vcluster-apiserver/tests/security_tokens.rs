//! Bearer tokens on a secure server: static tokens from a token file,
//! service-account tokens from `kubectl create token` (TokenRequest), and
//! tokens that must be refused (expired, forged, tampered, for another
//! audience, of a deleted service account).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use vcluster_apiserver::auth::{ServiceAccountKey, StaticTokens, DEFAULT_ISSUER};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::within;

const TOKEN_FILE: &str = "# token,user,uid,groups\nbob-secret-token,bob,uid-bob,\"devs,qa\"\n";

/// A secure server with a token file and a signing key the test knows.
async fn token_server(key: ServiceAccountKey) -> Cluster {
    Cluster::start_with(Options {
        secure: true,
        configure: Box::new(move |config| {
            config.auth.static_tokens = StaticTokens::from_csv(TOKEN_FILE).expect("token file");
            config.auth.service_account_key = Some(key);
        }),
        ..Options::default()
    })
    .await
}

/// Whether kubectl was refused as unauthenticated (401).
async fn unauthenticated(server: &Cluster, kubeconfig: &Path) -> bool {
    let output = server.kubectl_as(kubeconfig, &["get", "pods"]).await;
    !output.status.success()
        && String::from_utf8_lossy(&output.stderr)
            .contains("error: You must be logged in to the server")
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_users_authenticate_with_their_groups() {
    let server = token_server(ServiceAccountKey::generate().expect("key")).await;
    server
        .kubectl_ok(&[
            "create",
            "clusterrolebinding",
            "devs-view",
            "--clusterrole=view",
            "--group=devs",
        ])
        .await;
    let bob = server.token_kubeconfig("bob", "bob-secret-token");
    server.kubectl_ok_as(&bob, &["get", "pods", "-A"]).await;
    server
        .kubectl_ok_as(&bob, &["get", "services", "-n", "default"])
        .await;
    let whoami = server.kubectl_ok_as(&bob, &["auth", "whoami"]).await;
    assert!(whoami.contains("bob"), "{whoami}");
    assert!(
        whoami.contains("[devs qa system:authenticated]"),
        "{whoami}"
    );
    assert!(whoami.contains("uid-bob"), "{whoami}");
    let stderr = server
        .kubectl_err_as(&bob, &["create", "configmap", "x"])
        .await;
    assert!(
        stderr.contains(
            "configmaps is forbidden: User \"bob\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
        ),
        "{stderr}"
    );
    // `view` does not include secrets.
    let stderr = server.kubectl_err_as(&bob, &["get", "secrets"]).await;
    assert!(
        stderr.contains("cannot list resource \"secrets\""),
        "{stderr}"
    );
    let unknown = server.token_kubeconfig("unknown", "not-a-known-token");
    assert!(unauthenticated(&server, &unknown).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_from_kubectl_create_token() {
    let key = ServiceAccountKey::generate().expect("key");
    let server = token_server(key.clone()).await;
    server.kubectl_ok(&["create", "namespace", "team"]).await;
    server
        .kubectl_ok(&["create", "serviceaccount", "builder", "-n", "team"])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "rolebinding",
            "builder-edit",
            "--clusterrole=edit",
            "--serviceaccount=team:builder",
            "-n",
            "team",
        ])
        .await;

    let token = server
        .kubectl_ok(&["create", "token", "builder", "-n", "team"])
        .await
        .trim()
        .to_owned();
    let header = header_of(&token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], key.key_id());
    let claims = claims_of(&token);
    assert_eq!(claims["iss"], DEFAULT_ISSUER);
    assert_eq!(claims["aud"], json!([DEFAULT_ISSUER]));
    assert_eq!(claims["sub"], "system:serviceaccount:team:builder");
    assert_eq!(claims["kubernetes.io"]["namespace"], "team");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "builder");
    let uid = server
        .stored("", "serviceaccounts", Some("team"), "builder")
        .await
        .expect("the service account")["metadata"]["uid"]
        .clone();
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["uid"], uid);
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 3600);

    let builder = server.token_kubeconfig("builder", &token);
    server
        .kubectl_ok_as(&builder, &["create", "configmap", "settings", "-n", "team"])
        .await;
    server
        .kubectl_ok_as(&builder, &["get", "pods", "-n", "team"])
        .await;
    let stderr = server
        .kubectl_err_as(&builder, &["get", "pods", "-n", "default"])
        .await;
    assert!(
        stderr.contains(
            "pods is forbidden: User \"system:serviceaccount:team:builder\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{stderr}"
    );
    let whoami = server.kubectl_ok_as(&builder, &["auth", "whoami"]).await;
    assert!(
        whoami.contains("system:serviceaccount:team:builder"),
        "{whoami}"
    );
    assert!(
        whoami
            .contains("[system:serviceaccounts system:serviceaccounts:team system:authenticated]"),
        "{whoami}"
    );

    // Durations: at least 10 minutes, as upstream.
    let long = server
        .kubectl_ok(&["create", "token", "builder", "-n", "team", "--duration=2h"])
        .await;
    let claims = claims_of(long.trim());
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        7200
    );
    let stderr = server
        .kubectl_err(&["create", "token", "builder", "-n", "team", "--duration=1m"])
        .await;
    assert!(
        stderr.contains("may not specify a duration less than 10 minutes"),
        "{stderr}"
    );
    let stderr = server
        .kubectl_err(&["create", "token", "nobody", "-n", "team"])
        .await;
    assert!(
        stderr.contains("serviceaccounts \"nobody\" not found"),
        "{stderr}"
    );

    // A token bound to a pod dies with the pod.
    server
        .kubectl_ok(&[
            "run",
            "web",
            "--image=nginx:1.27",
            "-n",
            "team",
            "--overrides={\"spec\":{\"serviceAccountName\":\"builder\"}}",
        ])
        .await;
    // Only for the account the pod runs as (as upstream).
    server
        .kubectl_ok(&["run", "other", "--image=nginx:1.27", "-n", "team"])
        .await;
    let stderr = server
        .kubectl_err(&[
            "create",
            "token",
            "builder",
            "-n",
            "team",
            "--bound-object-kind=Pod",
            "--bound-object-name=other",
        ])
        .await;
    assert!(
        stderr.contains(
            "cannot bind token for serviceaccount \"builder\" to pod running with different serviceaccount name."
        ),
        "{stderr}"
    );
    let bound = server
        .kubectl_ok(&[
            "create",
            "token",
            "builder",
            "-n",
            "team",
            "--bound-object-kind=Pod",
            "--bound-object-name=web",
        ])
        .await;
    let bound_claims = claims_of(bound.trim());
    assert_eq!(bound_claims["kubernetes.io"]["pod"]["name"], "web");
    let bound_kubeconfig = server.token_kubeconfig("bound", bound.trim());
    let whoami = server
        .kubectl_ok_as(&bound_kubeconfig, &["auth", "whoami"])
        .await;
    assert!(
        whoami.contains("authentication.kubernetes.io/pod-name"),
        "{whoami}"
    );
    server
        .kubectl_ok(&["delete", "pod", "web", "-n", "team", "--grace-period=0"])
        .await;
    assert!(unauthenticated(&server, &bound_kubeconfig).await);

    // Deleting the service account revokes its tokens.
    server
        .kubectl_ok(&["delete", "serviceaccount", "builder", "-n", "team"])
        .await;
    assert!(unauthenticated(&server, &builder).await);
    server
        .kubectl_ok(&["create", "serviceaccount", "builder", "-n", "team"])
        .await;
    // Same name, new uid: still refused.
    assert!(unauthenticated(&server, &builder).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_and_foreign_tokens_are_refused() {
    let key = ServiceAccountKey::generate().expect("key");
    let server = token_server(key.clone()).await;
    server
        .kubectl_ok(&["create", "serviceaccount", "builder", "-n", "default"])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "clusterrolebinding",
            "builder-view",
            "--clusterrole=view",
            "--serviceaccount=default:builder",
        ])
        .await;
    let uid = server
        .stored("", "serviceaccounts", Some("default"), "builder")
        .await
        .expect("the service account")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let claims = |exp: i64| {
        json!({
            "iss": DEFAULT_ISSUER,
            "aud": [DEFAULT_ISSUER],
            "sub": "system:serviceaccount:default:builder",
            "iat": now() - 7200,
            "nbf": now() - 7200,
            "exp": exp,
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "builder", "uid": uid}},
        })
    };

    // Minted with the server's key and valid: accepted.
    let valid = key.sign(&claims(now() + 600)).expect("sign");
    let kubeconfig = server.token_kubeconfig("valid", &valid);
    server.kubectl_ok_as(&kubeconfig, &["get", "pods"]).await;

    let expired = key.sign(&claims(now() - 60)).expect("sign");
    let other_key = ServiceAccountKey::generate().expect("key");
    let forged = other_key.sign(&claims(now() + 600)).expect("sign");
    // A valid signature over other claims: the payload swapped.
    let mut admin_claims = claims(now() + 600);
    admin_claims["sub"] = json!("system:serviceaccount:kube-system:admin");
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin_claims).expect("json"));
    let tampered = parts.join(".");
    let mut wrong_audience = claims(now() + 600);
    wrong_audience["aud"] = json!(["https://somewhere.else"]);
    let wrong_audience = key.sign(&wrong_audience).expect("sign");
    let mut wrong_issuer = claims(now() + 600);
    wrong_issuer["iss"] = json!("https://evil.example");
    let wrong_issuer = key.sign(&wrong_issuer).expect("sign");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(now() + 600)).expect("json"))
    );
    for (name, token) in [
        ("expired", &expired),
        ("forged", &forged),
        ("tampered", &tampered),
        ("audience", &wrong_audience),
        ("issuer", &wrong_issuer),
        ("unsigned", &unsigned),
    ] {
        let kubeconfig = server.token_kubeconfig(name, token);
        assert!(
            unauthenticated(&server, &kubeconfig).await,
            "the {name} token was accepted"
        );
        // The answer is a 401 Status.
        let client = server.client_from(&kubeconfig).await;
        let result = within("a bad-token list", client.list_api_groups()).await;
        assert!(
            matches!(result, Err(kube::Error::Api(ref s)) if s.code == 401 && s.reason == "Unauthorized"),
            "{name}: {result:?}"
        );
    }

    // TokenReview (for the admin) says the same.
    let admin = server.client_from(&server.kubeconfig).await;
    let reviews: Api<TokenReview> = Api::all(admin);
    for (token, authenticated) in [(&valid, true), (&expired, false), (&forged, false)] {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.clone()),
                ..TokenReviewSpec::default()
            },
            ..TokenReview::default()
        };
        let answer = within(
            "a token review",
            reviews.create(&PostParams::default(), &review),
        )
        .await
        .expect("token review");
        let status = answer.status.expect("status");
        assert_eq!(status.authenticated, Some(authenticated), "{status:?}");
        if authenticated {
            let user = status.user.expect("user");
            assert_eq!(
                user.username.as_deref(),
                Some("system:serviceaccount:default:builder")
            );
            assert_eq!(user.uid.as_deref(), Some(uid.as_str()));
        } else {
            assert!(status.error.is_some());
        }
    }
}

/// kube-rs's own `create_token_request` scenario, and upstream's audience
/// rules: a review is answered for the audiences it names (or the API
/// server's), and its status reports the token's audiences among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reviews_answer_for_the_audiences_they_ask_about() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;

    let server = token_server(ServiceAccountKey::generate().expect("key")).await;
    let admin = server.client_from(&server.kubeconfig).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "fakesa"}})).expect("account");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create the service account");
    let token_for = |audiences: Vec<String>| {
        let accounts = accounts.clone();
        async move {
            let request = TokenRequest {
                spec: TokenRequestSpec {
                    audiences,
                    ..TokenRequestSpec::default()
                },
                ..TokenRequest::default()
            };
            let issued = accounts
                .create_token_request("fakesa", &PostParams::default(), &request)
                .await
                .expect("token request");
            issued.status.expect("a status").token
        }
    };
    let reviews: Api<TokenReview> = Api::all(admin);
    let review = |token: String, audiences: Option<Vec<String>>| {
        let reviews = reviews.clone();
        async move {
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token),
                    audiences,
                },
                ..TokenReview::default()
            };
            reviews
                .create(&PostParams::default(), &review)
                .await
                .expect("token review")
                .status
                .expect("status")
        }
    };

    let api = vec!["api".to_owned()];
    let for_api = token_for(api.clone()).await;
    let status = review(for_api.clone(), Some(api.clone())).await;
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(status.audiences, Some(api.clone()));
    assert_eq!(status.error, None);
    assert_eq!(
        status.user.and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:default:fakesa")
    );
    // Not meant for the API server itself: a review for its audiences says
    // no, and the API refuses it.
    let status = review(for_api.clone(), None).await;
    assert_eq!(status.authenticated, Some(false), "{status:?}");
    assert!(
        status
            .error
            .as_deref()
            .is_some_and(|e| e.contains("invalid for the target audiences")),
        "{status:?}"
    );
    let kubeconfig = server.token_kubeconfig("for-api", &for_api);
    assert!(unauthenticated(&server, &kubeconfig).await);

    // A token for the API server: the review reports the server's audience.
    let default = token_for(Vec::new()).await;
    let status = review(default, None).await;
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(status.audiences, Some(vec![DEFAULT_ISSUER.to_owned()]));
}
