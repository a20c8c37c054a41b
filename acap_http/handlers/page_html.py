"""The settings page's HTML, rendered from the state (``overview``): the first view, complete and
readable without JavaScript; ``page.js`` then keeps it live from ``state`` and sends the changes.
Every value is escaped here, whatever it holds (a certificate's subject is the uploader's text)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from acap_http.tls.files import TLS_FILES

# What each of the three files is, in the original manual's words.
FILE_TITLES = {
    "ca.pem": "Certificate Authority certificate",
    "server-cert.pem": "Server certificate",
    "server-key.pem": "Private server key",
}


def render(state: Mapping[str, Any], prefix: str) -> str:
    app, user = state["application"], state["user"]
    may_change = bool(user["may_change"])
    title = f"{app['friendly_name']} — {app['name']}"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(title)}</title>",
            '<link rel="icon" href="icon.svg" type="image/svg+xml">',
            '<link rel="stylesheet" href="page.css">',
            '<script src="page.js" defer></script>',
            "</head>",
            f'<body data-prefix="{e(prefix)}" data-app="{e(app["name"])}" '
            f'data-may-change="{"true" if may_change else "false"}">',
            "<header>",
            f"<h1>{e(app['friendly_name'])} <small>{e(app['name'])} {e(app['version'])}</small></h1>",
            f'<p id="user">{e(_user_line(user))}</p>',
            "</header>",
            "<main>",
            _status_section(state["status"], app, may_change),
            _settings_section(state["settings"], may_change),
            _tls_section(state["tls"], may_change and app["running"]),
            _dockerd_section(state["dockerd"], state["last_restart"], state["log"], may_change),
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def e(value: object) -> str:
    """Escaped for HTML text and attribute values alike."""
    return escape("" if value is None else str(value), quote=True)


def _user_line(user: Mapping[str, Any]) -> str:
    if not user["name"]:
        return "Not signed in"
    level = f" ({user['level']})" if user["level"] else ""
    viewing = "" if user["may_change"] else ": you may look, not change"
    return f"Signed in as {user['name']}{level}{viewing}"


def _disabled(may_change: bool) -> str:
    return "" if may_change else " disabled"


def _status_section(status: Mapping[str, Any], app: Mapping[str, Any], may_change: bool) -> str:
    buttons = "".join(
        f'<button type="button" data-control="{action}"{_disabled(may_change and useful)}>{label}</button>'
        for action, label, useful in (
            ("start", "Start", not app["running"]),
            ("stop", "Stop", app["running"]),
            ("restart", "Restart", True),
        )
    )
    return f"""<section id="status-section" aria-labelledby="status-title">
<h2 id="status-title">Status</h2>
<p class="status" id="status" data-code="{e(status["code"])}"><strong id="status-value">{e(status["value"])}</strong>
<span id="status-since">since <time datetime="{e(status["since"])}">{e(status["since"])}</time></span></p>
<p id="status-meaning">{e(status["meaning"])}</p>
<p id="status-fix" class="fix">{e(status["fix"])}</p>
<p>The application is <strong id="app-state">{"running" if app["running"] else "stopped"}</strong>.</p>
<div class="actions">{buttons}</div>
<p id="control-result" class="result" role="status" aria-live="polite"></p>
</section>"""


def _settings_section(settings: Iterable[Mapping[str, Any]], may_change: bool) -> str:
    fields = "\n".join(_field(entry, may_change) for entry in settings)
    return f"""<section id="settings-section" aria-labelledby="settings-title">
<h2 id="settings-title">Settings</h2>
<form id="settings">
{fields}
<div class="actions"><button type="submit"{_disabled(may_change)}>Save settings</button></div>
<p id="settings-result" class="result" role="status" aria-live="polite"></p>
</form>
</section>"""


def _field(entry: Mapping[str, Any], may_change: bool) -> str:
    name, value, control = entry["name"], entry["value"], entry["control"]
    ident = f"setting-{e(name)}"
    label = f'<label for="{ident}">{e(name)}</label>'
    off = _disabled(may_change)
    match control:
        case "switch":
            checked = " checked" if value == entry["on"] else ""
            widget = (
                f'<input type="checkbox" role="switch" id="{ident}" name="{e(name)}" '
                f'data-on="{e(entry["on"])}" data-off="{e(entry["off"])}"{checked}{off}>'
            )
        case "select":
            options = "".join(
                f'<option value="{e(c["value"])}"{" selected" if c["value"] == value else ""}>{e(c["label"])}</option>'
                for c in entry["choices"]
            )
            widget = f'<select id="{ident}" name="{e(name)}"{off}>{options}</select>'
        case "readonly":
            label = f'<span class="label" id="{ident}-label">{e(name)}</span>'
            widget = f'<output id="{ident}" aria-labelledby="{ident}-label">{e(value)}</output>'
        case _:
            kind = "number" if control == "number" else "text"
            widget = f'<input type="{kind}" id="{ident}" name="{e(name)}" value="{e(value)}"{off}>'
    return f'<div class="field" data-setting="{e(name)}">{label}{widget}</div>'


def _tls_section(tls: Mapping[str, Any], may_change: bool) -> str:
    off = _disabled(may_change)
    files = "\n".join(_tls_file(name, tls.get(name, {}), off) for name in TLS_FILES)
    return f"""<section id="tls-section" aria-labelledby="tls-title">
<h2 id="tls-title">TLS</h2>
<div id="tls-overview">{tls_overview(tls)}</div>
<div class="files">
{files}
</div>
<form id="tls-set" class="dropzone">
<p><label for="set-files">Drop the three files here at once (named ca.pem, server-cert.pem and
server-key.pem), or choose them:</label></p>
<input type="file" id="set-files" multiple accept=".pem,.crt,.key"{off}>
</form>
<p id="tls-result" class="result" role="status" aria-live="polite"></p>
</section>"""


def tls_overview(tls: Mapping[str, Any]) -> str:
    if "error" in tls:
        return f'<p class="bad" id="tls-verdict">{e(tls["error"])}</p>'
    if tls.get("dockerd_would_start"):
        verdict = '<p class="ok" id="tls-verdict">dockerd would start with these files.</p>'
    else:
        why = tls.get("dockerd_refusal") or "the set is not complete"
        verdict = f'<p class="bad" id="tls-verdict">dockerd would not start with these files: {e(why)}.</p>'
    expiring = "".join(
        f"<li>{e(item['file'])} ({e(item['subject'])}) expires in {e(item['days_left'])} days</li>"
        for item in tls.get("expiring", [])
    )
    findings = "".join(
        f'<li class="{e(finding["level"]).lower()}">{e(finding["message"])}</li>' for finding in tls.get("findings", [])
    )
    return (
        verdict
        + (f'<ul class="warning" id="tls-expiring">{expiring}</ul>' if expiring else "")
        + (f'<ul id="tls-findings">{findings}</ul>' if findings else "")
    )


def _tls_file(name: str, entry: Mapping[str, Any], off: str) -> str:
    return f"""<article class="tls-file" id="file-{e(name)}" data-file="{e(name)}">
<h3>{e(name)} <small>{e(FILE_TITLES.get(name, ""))}</small></h3>
<div class="facts">{tls_file_facts(entry)}</div>
<form class="upload" data-file="{e(name)}">
<label for="upload-{e(name)}">New {e(name)}</label>
<input type="file" id="upload-{e(name)}" accept=".pem,.crt,.key"{off}>
<button type="submit"{off}>Upload</button>
<button type="button" class="delete" data-file="{e(name)}"{off or _disabled(bool(entry.get("present")))}>Delete</button>
</form>
</article>"""


def tls_file_facts(entry: Mapping[str, Any]) -> str:
    if not entry:  # the summary could not be made (said above the files)
        return ""
    if not entry.get("present"):
        return '<p class="missing">Not on the device.</p>'
    if "error" in entry:
        return f'<p class="bad">Cannot be used: {e(entry["error"])}</p>'
    if "certificates" not in entry:  # the key: only what it is and which key, never itself
        rows = [("Key", f"{entry.get('key_type')}, {entry.get('key_size')} bits"),
                ("Public key SHA-256", entry.get("public_key_sha256"))]  # fmt: skip
        return _facts(rows)
    return "".join(_facts(_certificate_rows(certificate)) for certificate in entry["certificates"])


def _certificate_rows(certificate: Mapping[str, Any]) -> list[tuple[str, object]]:
    days = certificate["days_left"]
    left = f"{days} days left" if days >= 0 else f"expired {-days} days ago"
    return [
        ("Subject", certificate["subject"]),
        ("Names", ", ".join(certificate["subject_alternative_names"]) or "none"),
        ("Issuer", certificate["issuer"]),
        ("Not after", f"{certificate['not_valid_after']} ({left})"),
        ("SHA-256", certificate["sha256_fingerprint"]),
    ]


def _facts(rows: Iterable[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in rows) + "</dl>"


def _dockerd_section(dockerd: Mapping[str, Any], last_restart: Any, log: list[str] | None, may_change: bool) -> str:
    editor = (
        '<form id="daemon-json-form"><label for="daemon-json">daemon.json (dockerd\'s configuration file)</label>'
        '<textarea id="daemon-json" rows="8" spellcheck="false"></textarea>'
        '<div class="actions"><button type="submit" disabled>Save daemon.json</button></div>'
        '<p id="daemon-json-result" class="result" role="status" aria-live="polite"></p></form>'
        if may_change
        else "<p>daemon.json is shown to admins only (it may hold a proxy's password).</p>"
    )
    log_view = (
        f'<pre id="log" tabindex="0" aria-label="The application\'s last log lines">{e(chr(10).join(log))}</pre>'
        if log is not None
        else "<p>The log is shown to admins only (it names users who failed to sign in).</p>"
    )
    return f"""<section id="dockerd-section" aria-labelledby="dockerd-title">
<h2 id="dockerd-title">dockerd</h2>
<div id="dockerd-facts">{dockerd_facts(dockerd, last_restart)}</div>
<h3>Configuration</h3>
{editor}
<h3>Log</h3>
{log_view}
</section>"""


def dockerd_facts(dockerd: Mapping[str, Any], last_restart: Any) -> str:
    if "error" in dockerd:
        return f'<p class="bad">{e(dockerd["error"])}</p>'
    rows: list[tuple[str, object]] = [
        ("Version", dockerd["version"]),
        ("Runs", f"{dockerd['mode']}, as {dockerd['user']}"),
        ("Answers", "yes" if dockerd["answers"] else "no"),
    ]
    if dockerd["answers"]:
        rows += [
            ("Containers running", f"{dockerd['containers_running']} of {dockerd['containers']}"),
            ("Images", dockerd["images"]),
            ("Data root", dockerd["data_root"]),
        ]
    if last_restart:
        rows.append(("Last restart asked for", f"{last_restart['what']} at {last_restart['at']}"))
    command = dockerd.get("command")
    flags = f'<p class="command"><code>{e(" ".join(command))}</code></p>' if command else ""
    return _facts(rows) + flags
