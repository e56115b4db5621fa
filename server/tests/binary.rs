//! The real binary as an operator meets it: every flag, variable and default the README's table
//! lists is the binary's own; a bad setting stops it with a message that names the flag; each call
//! writes one access-log line with its method, code, latency, peer and request id, in text and in
//! JSON, and `RUST_LOG=warn` silences them; health checks are answered whatever their `Host`; and
//! a debug binary, which embeds no page, serves `./dist`.

mod support;

use hello_proto::HelloRequest;
use support::ServerProcess;
use test_support::raw;

#[test]
fn a_bad_value_stops_the_binary_with_a_message_naming_its_flag() {
    for (args, env, named) in [
        (
            &["--max-concurrent-calls", "0"][..],
            None,
            "--max-concurrent-calls",
        ),
        (&["--idle-timeout", "soon"][..], None, "--idle-timeout"),
        (
            &["--allowed-host", "http://a.example"][..],
            None,
            "--allowed-host",
        ),
        (
            &[][..],
            Some(("GREETER_MAX_MESSAGE_SIZE", "12")),
            "--max-message-size",
        ),
    ] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_greeter-server"));
        command.args(args).args(["--addr", "127.0.0.1:0"]);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

/// The README's table of flags, row by row, against `--help`: each flag exists, reads the variable
/// the table names, and has the table's default (or none where the table says there is none).
#[test]
fn the_readme_flags_table_is_the_binarys() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_greeter-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    // Each flag's entry: from its `--flag` line to the next flag's.
    let entry = |flag: &str| -> Option<String> {
        let start = help.lines().position(|line| {
            let line = line.trim_start();
            line == flag || line.starts_with(&format!("{flag} <"))
        })?;
        let lines: Vec<&str> = help.lines().skip(start + 1).collect();
        // The next flag ends the entry; a possible value's line (`- text: ...`) does not.
        let end = lines
            .iter()
            .map(|line| line.trim_start())
            .position(|line| line.starts_with('-') && !line.starts_with("- "))
            .unwrap_or(lines.len());
        Some(lines[..end].join(" "))
    };
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let table = readme
        .lines()
        .skip_while(|line| !line.starts_with("| flag | env | default |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'));
    let mut rows = 0;
    for row in table {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (flags, envs, default) = (ticked(cells[1]), ticked(cells[2]), cells[3]);
        assert_eq!(flags.len(), envs.len(), "{row}");
        // A default that is a value (`10s`, `4 MiB`, `10,000`, `text`), not a description.
        let expected_default = default
            .starts_with(|c: char| c.is_ascii_digit() || c == '`')
            .then(|| match default.trim_matches('`') {
                "4 MiB" => (4 * 1024 * 1024).to_string(),
                value => value.replace(',', ""),
            });
        for (flag, env) in flags.iter().zip(&envs) {
            rows += 1;
            let entry = entry(flag);
            if flag == "--grpc-testing" && !cfg!(feature = "grpc-testing") {
                assert_eq!(entry, None, "{flag} in a build without its feature");
                continue;
            }
            let entry = entry.unwrap_or_else(|| panic!("{flag} is not in --help:\n{help}"));
            assert!(entry.contains(&format!("[env: {env}=]")), "{flag}: {entry}");
            let shown_default = entry
                .split("[default: ")
                .nth(1)
                .and_then(|rest| rest.split(']').next())
                .map(str::to_owned);
            assert_eq!(shown_default, expected_default, "{flag}: {entry}");
        }
    }
    assert!(rows >= 19, "{rows} flags in the README's table");
}

#[tokio::test]
async fn rust_log_warn_silences_the_access_lines() {
    let server = ServerProcess::start_with_env(&[], &[("RUST_LOG", "warn")]).await;
    let mut client = server.native_client().await;
    for _ in 0..3 {
        client
            .say_hello(HelloRequest {
                name: "quiet".into(),
            })
            .await
            .unwrap();
    }
    // A refusal the server warns about, written after the calls: once it is in the log, the
    // access lines would be too.
    let refused = raw::raw_exchange(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 421"), "{refused}");
    let started = std::time::Instant::now();
    while !server.log().contains("elsewhere.example") {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no warning logged: {}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(
        !log.contains("call ended") && !log.contains(" INFO "),
        "{log}"
    );
}

/// A load balancer's health check may carry any `Host` (its own name for the replica): `/readyz`
/// and `/livez` answer it, where the API would refuse the host with 421.
#[tokio::test]
async fn health_checks_are_answered_whatever_their_host() {
    let server = ServerProcess::start(&[]).await;
    for path in ["/readyz", "/livez"] {
        let response = raw::raw_exchange(
            server.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: replica-3.internal.example\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
    }
}

/// Makes one call with `x-request-id: chosen-id` and two without, and returns the server's log.
async fn three_calls_logged(args: &[&str]) -> (String, Vec<String>) {
    let server = ServerProcess::start(args).await;
    let mut client = server.native_client().await;
    let mut request = tonic::Request::new(HelloRequest { name: "log".into() });
    request
        .metadata_mut()
        .insert("x-request-id", "chosen-id".parse().unwrap());
    client.say_hello(request).await.unwrap();
    let mut generated = Vec::new();
    for _ in 0..2 {
        let reply = client
            .say_hello(HelloRequest { name: "log".into() })
            .await
            .unwrap();
        let id = reply.metadata().get("x-request-id").unwrap();
        generated.push(id.to_str().unwrap().to_owned());
    }
    // The log line is written as the response ends: give it a moment to reach the file.
    let started = std::time::Instant::now();
    while server.log().matches("call ended").count() < 3 {
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (server.log(), generated)
}

#[tokio::test]
async fn each_call_writes_one_text_access_line_with_its_fields() {
    let (log, generated) = three_calls_logged(&[]).await;
    assert_ne!(generated[0], generated[1], "request ids must be unique");
    let lines: Vec<_> = log
        .lines()
        .filter(|line| line.contains("call ended"))
        .collect();
    assert_eq!(lines.len(), 3, "{log}");
    for (line, id) in lines
        .iter()
        .zip(["chosen-id", &generated[0], &generated[1]])
    {
        for field in [
            "method=/hello.Greeter/SayHello",
            "peer=127.0.0.1:",
            &format!("request_id={id}"),
            "code=\"OK\"",
            "latency_ms=",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
        assert!(line.contains(" INFO "), "{line}");
    }
}

#[tokio::test]
async fn json_access_lines_carry_the_same_fields() {
    let (log, generated) = three_calls_logged(&["--log-format", "json"]).await;
    let calls: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|entry: &serde_json::Value| entry["fields"]["message"] == "call ended")
        .collect();
    assert_eq!(calls.len(), 3, "{log}");
    for (entry, id) in calls
        .iter()
        .zip(["chosen-id", &generated[0], &generated[1]])
    {
        let span = &entry["span"];
        assert_eq!(entry["level"], "INFO");
        assert_eq!(span["method"], "/hello.Greeter/SayHello");
        assert_eq!(span["request_id"], id);
        assert_eq!(span["code"], "OK");
        assert!(span["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(span["latency_ms"].as_f64().is_some(), "{entry}");
    }
}

/// With no `--static-dir` and no page embedded (a debug build embeds none), the page comes from
/// `./dist` in the working directory; without one there, the API still serves and the log says
/// how to build the page.
#[tokio::test]
async fn a_binary_without_an_embedded_page_serves_dist_from_its_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dist")).unwrap();
    std::fs::write(
        dir.path().join("dist/index.html"),
        "<!doctype html><title>from dist</title>",
    )
    .unwrap();
    let server = ServerProcess::start_in(dir.path(), &[]).await;
    let page = raw::get(server.addr, "/", &server.addr.to_string()).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.ends_with("<!doctype html><title>from dist</title>"),
        "{page}"
    );
    assert!(
        server.log().contains("serving the page from dist"),
        "{}",
        server.log()
    );

    let empty = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_in(empty.path(), &[]).await;
    server.assert_serving().await;
    assert!(
        server
            .log()
            .contains("no page from dist: build it there with `trunk build --release`"),
        "{}",
        server.log()
    );
}
