// The settings page, kept live from `state` (one JSON answer, polled), and its changes sent to the
// application's own API: the JSON Param API for settings, the TLS endpoints for files, daemon.json,
// and control.cgi for the application. Every value is put in as text, never as HTML.
"use strict";

(() => {
  const body = document.body;
  const prefix = body.dataset.prefix;
  const app = body.dataset.app;
  const POLL = 2000; // ms between two reads of the state
  const BUSY_POLL = 500; // after a change, until QUICK_FOR has passed
  const QUICK_FOR = 20000;
  const FILES = ["ca.pem", "server-cert.pem", "server-key.pem"];
  let state = null;
  let quickUntil = 0;
  let controlling = false; // a start, stop or restart is on its way: its buttons wait
  let generation = 0; // counts the page's own changes: a state read before one is not shown after it
  let daemonJsonLoaded = false; // Save sends the editor's text only once it holds the stored one
  const mayChange = body.dataset.mayChange === "true";
  const edited = new Set(); // settings changed in the form and not yet saved: polls leave them be

  const $ = (id) => document.getElementById(id);
  // Requests name the origin alone: a page opened with a user and password in its address would
  // otherwise resolve relative URLs with the credentials in them, which fetch refuses.
  const at = (path) => new URL(path, location.origin).href;

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
    return node;
  }

  function facts(rows) {
    const list = el("dl");
    for (const [label, value] of rows) list.append(el("dt", {}, label), el("dd", {}, value));
    return list;
  }

  function say(id, text, good) {
    const node = $(id);
    if (!node) return;
    node.textContent = text;
    node.className = "result " + (good ? "ok" : "bad");
  }

  function when(iso) {
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return iso;
    const seconds = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
    const ago = seconds < 90 ? `${seconds} s ago` : seconds < 5400 ? `${Math.round(seconds / 60)} min ago`
      : `${Math.round(seconds / 3600)} h ago`;
    return `${at.toLocaleString()} (${ago})`;
  }

  // --- rendering the state --------------------------------------------------------------------

  function render(next) {
    state = next;
    const status = next.status;
    const line = $("status");
    line.dataset.code = status.code;
    $("status-value").textContent = status.value;
    $("status-since").replaceChildren("since ", el("time", { datetime: status.since }, when(status.since)));
    $("status-meaning").textContent = status.meaning;
    $("status-fix").textContent = status.fix;
    $("app-state").textContent = next.application.running ? "running" : "stopped";
    if (mayChange) {
      const running = next.application.running;
      const useful = { start: !running, stop: running, restart: true };
      for (const button of document.querySelectorAll("button[data-control]")) {
        button.disabled = controlling || !useful[button.dataset.control];
      }
      // A stopped application's files and daemon.json answer 503, as on a camera: nothing to send.
      for (const input of document.querySelectorAll("#tls-section input, #tls-section button")) {
        input.disabled = !running;
      }
      for (const name of FILES) {
        const remove = document.querySelector(`button.delete[data-file="${name}"]`);
        if (remove && !(next.tls[name] && next.tls[name].present)) remove.disabled = true;
      }
      if (running && !daemonJsonLoaded) loadDaemonJson();
      if (!running) daemonJsonLoaded = false;
      const saveJson = document.querySelector("#daemon-json-form button[type=submit]");
      if (saveJson) saveJson.disabled = !running || !daemonJsonLoaded;
    }
    for (const setting of next.settings) renderSetting(setting);
    renderTls(next.tls);
    renderDockerd(next.dockerd, next.last_restart);
    const log = $("log");
    if (log && next.log) {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = next.log.join("\n");
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
  }

  function current(setting, input) {
    return setting.control === "switch" ? (input.checked ? setting.on : setting.off) : input.value;
  }

  function renderSetting(setting) {
    const input = $(`setting-${setting.name}`);
    if (!input) return;
    if (edited.has(setting.name)) {
      if (current(setting, input) !== setting.value) return; // being changed: left as the user has it
      edited.delete(setting.name); // changed back, or saved by someone else: it follows again
    }
    if (setting.control === "switch") input.checked = setting.value === setting.on;
    else input.value = setting.value;
    if (input.tagName === "OUTPUT") input.textContent = setting.value;
  }

  function renderTls(tls) {
    const parts = [];
    if (tls.error) {
      $("tls-overview").replaceChildren(el("p", { class: "bad", id: "tls-verdict" }, tls.error));
      for (const card of document.querySelectorAll("article.tls-file .facts")) card.replaceChildren();
      return;
    }
    if (tls.dockerd_would_start) {
      parts.push(el("p", { class: "ok", id: "tls-verdict" }, "dockerd would start with these files."));
    } else {
      const why = tls.dockerd_refusal || "the set is not complete";
      parts.push(el("p", { class: "bad", id: "tls-verdict" }, `dockerd would not start with these files: ${why}.`));
    }
    if (tls.expiring.length) {
      parts.push(el("ul", { class: "warning", id: "tls-expiring" },
        ...tls.expiring.map((c) => el("li", {}, `${c.file} (${c.subject}) expires in ${c.days_left} days`))));
    }
    if (tls.findings.length) {
      parts.push(el("ul", { id: "tls-findings" },
        ...tls.findings.map((f) => el("li", { class: String(f.level).toLowerCase() }, f.message))));
    }
    $("tls-overview").replaceChildren(...parts);
    for (const name of FILES) {
      const card = document.querySelector(`article[data-file="${name}"] .facts`);
      if (card) card.replaceChildren(...fileFacts(tls[name] || {}));
    }
  }

  function fileFacts(entry) {
    if (!entry.present) return [el("p", { class: "missing" }, "Not on the device.")];
    if (entry.error) return [el("p", { class: "bad" }, `Cannot be used: ${entry.error}`)];
    if (!entry.certificates) {
      return [facts([["Key", `${entry.key_type}, ${entry.key_size} bits`],
        ["Public key SHA-256", entry.public_key_sha256]])];
    }
    return entry.certificates.map((c) => {
      const left = c.days_left >= 0 ? `${c.days_left} days left` : `expired ${-c.days_left} days ago`;
      return facts([["Subject", c.subject], ["Names", c.subject_alternative_names.join(", ") || "none"],
        ["Issuer", c.issuer], ["Not after", `${c.not_valid_after} (${left})`], ["SHA-256", c.sha256_fingerprint]]);
    });
  }

  function renderDockerd(dockerd, lastRestart) {
    if (dockerd.error) {
      $("dockerd-facts").replaceChildren(el("p", { class: "bad" }, dockerd.error));
      return;
    }
    const rows = [["Version", dockerd.version], ["Runs", `${dockerd.mode}, as ${dockerd.user}`],
      ["Answers", dockerd.answers ? "yes" : "no"]];
    if (dockerd.answers) {
      rows.push(["Containers running", `${dockerd.containers_running} of ${dockerd.containers}`],
        ["Images", dockerd.images], ["Data root", dockerd.data_root]);
    }
    if (lastRestart) rows.push(["Last restart asked for", `${lastRestart.what} at ${lastRestart.at}`]);
    const parts = [facts(rows)];
    if (dockerd.command) parts.push(el("p", { class: "command" }, el("code", {}, dockerd.command.join(" "))));
    $("dockerd-facts").replaceChildren(...parts);
  }

  // --- keeping it live ------------------------------------------------------------------------

  async function poll() {
    const asked = generation;
    try {
      const answer = await fetch(at(prefix + "state"), { cache: "no-store" });
      if (answer.ok) {
        const next = await answer.json();
        if (asked === generation) render(next); // else read before a change of ours: the next one shows it
        body.classList.remove("offline");
      } else {
        body.classList.add("offline");
      }
    } catch (error) {
      body.classList.add("offline");
    }
    setTimeout(poll, Date.now() < quickUntil ? BUSY_POLL : POLL);
  }

  function quickly() {
    generation += 1;
    quickUntil = Date.now() + QUICK_FOR;
  }

  // --- changes --------------------------------------------------------------------------------

  async function send(method, url, init) {
    const answer = await fetch(at(url), { method, cache: "no-store", ...init });
    const text = (await answer.text()).trim();
    return { answer, text };
  }

  // What X-Dockerd-Restart says dockerd did, in words.
  function restartWords(header) {
    if (!header) return "dockerd restarts to take it.";
    if (header === "unchanged") return "it was stored already: nothing changed, dockerd keeps running.";
    if (header === "reloaded") return "dockerd took it in place, without a restart.";
    if (header === "restarted") return "dockerd restarts to take it.";
    if (header.startsWith("refused: ")) return `dockerd would refuse it (${header.slice(9)}).`;
    return header;
  }

  async function saveSettings(event) {
    event.preventDefault();
    const data = {};
    for (const setting of state ? state.settings : []) {
      const input = $(`setting-${setting.name}`);
      if (!input || setting.control === "readonly") continue;
      const value = current(setting, input);
      if (value !== setting.value) data[setting.name] = value;
    }
    const names = Object.keys(data);
    if (!names.length) {
      say("settings-result", "Nothing to save: no setting was changed.", true);
      return;
    }
    say("settings-result", "Saving…", true);
    try {
      const { answer, text } = await send("PATCH", `/config/rest/param/v2beta/${encodeURIComponent(app)}`, {
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ data }),
      });
      let reply = {};
      try { reply = JSON.parse(text); } catch (error) { reply = { error: { message: text } }; }
      if (answer.ok && reply.status === "success") {
        for (const name of names) edited.delete(name);
        for (const setting of state.settings) if (names.includes(setting.name)) setting.value = data[setting.name];
        const shown = names.map((name) => `${name}=${data[name]}`).join(", ");
        say("settings-result", `Saved ${shown}; dockerd restarts to take it (Status follows below).`, true);
        quickly();
      } else {
        say("settings-result", `Not saved: ${(reply.error && reply.error.message) || answer.status}`, false);
      }
    } catch (error) {
      say("settings-result", `Not saved: ${error}`, false);
    }
  }

  async function upload(url, form, what) {
    say("tls-result", `Uploading ${what}…`, true);
    try {
      const { answer, text } = await send("POST", url, { body: form });
      if (answer.status === 204) {
        say("tls-result", `${what} stored; ${restartWords(answer.headers.get("X-Dockerd-Restart"))}`, true);
        quickly();
      } else {
        say("tls-result", `${what} not stored (${answer.status}): ${text}`, false);
      }
    } catch (error) {
      say("tls-result", `${what} not stored: ${error}`, false);
    }
  }

  function uploadOne(name, file) {
    const form = new FormData();
    form.append("file", file, name);
    return upload(prefix + encodeURIComponent(name), form, name);
  }

  function uploadMany(files) {
    const byName = new Map([...files].map((file) => [file.name, file]));
    const unknown = [...byName.keys()].filter((name) => !FILES.includes(name));
    if (unknown.length) {
      say("tls-result", `Not uploaded: ${unknown.join(", ")} is not one of ${FILES.join(", ")}. ` +
        "Rename it, or drop it on its file's card.", false);
      return;
    }
    if (byName.size === 1) {
      const [[name, file]] = byName;
      uploadOne(name, file);
      return;
    }
    if (byName.size !== FILES.length) {
      say("tls-result", `Not uploaded: a set is all three files (${FILES.join(", ")}); drop one at a time ` +
        "on its card instead.", false);
      return;
    }
    const form = new FormData();
    for (const name of FILES) form.append(name, byName.get(name), name);
    upload(prefix + "tls", form, "The TLS set");
  }

  async function remove(name) {
    try {
      const { answer, text } = await send("DELETE", prefix + encodeURIComponent(name));
      if (answer.status === 204) {
        say("tls-result", `${name} removed; dockerd keeps the files it has loaded until it next restarts.`, true);
        quickly();
      } else {
        say("tls-result", `${name} not removed (${answer.status}): ${text}`, false);
      }
    } catch (error) {
      say("tls-result", `${name} not removed: ${error}`, false);
    }
  }

  async function control(action) {
    const doing = { start: "Starting", stop: "Stopping", restart: "Restarting" }[action];
    say("control-result", `${doing} the application… (a stop waits for the containers to stop)`, true);
    quickly();
    controlling = true;
    for (const button of document.querySelectorAll("button[data-control]")) button.disabled = true;
    try {
      const query = `action=${encodeURIComponent(action)}&package=${encodeURIComponent(app)}`;
      const { answer, text } = await send("POST", `/axis-cgi/applications/control.cgi?${query}`);
      if (answer.ok && text === "OK") say("control-result", `Done: the application ${action === "stop" ? "is stopped" : "runs"}.`, true);
      else say("control-result", `Refused (${answer.status}): ${text}`, false);
    } catch (error) {
      say("control-result", `Failed: ${error}`, false);
    } finally {
      controlling = false;
      quickly();
    }
  }

  let loadingDaemonJson = false;
  let denied = false;

  async function loadDaemonJson() {
    const area = $("daemon-json");
    if (!area || loadingDaemonJson || denied) return;
    loadingDaemonJson = true;
    try {
      const { answer, text } = await send("GET", prefix + "daemon.json");
      if (answer.ok) {
        area.value = text;
        daemonJsonLoaded = true;
        document.querySelector("#daemon-json-form button[type=submit]").disabled = false;
      } else {
        denied = answer.status === 401 || answer.status === 403; // not asked again: it is the admin's
        say("daemon-json-result", `Could not read daemon.json (${answer.status}): ${text}`, false);
      }
    } catch (error) {
      say("daemon-json-result", `Could not read daemon.json: ${error}`, false);
    } finally {
      loadingDaemonJson = false;
    }
  }

  async function saveDaemonJson(event) {
    event.preventDefault();
    say("daemon-json-result", "Saving…", true);
    try {
      const { answer, text } = await send("PUT", prefix + "daemon.json", {
        headers: { "Content-Type": "application/json" }, body: $("daemon-json").value,
      });
      if (answer.status === 204) {
        say("daemon-json-result", `Saved; ${restartWords(answer.headers.get("X-Dockerd-Restart"))}`, true);
        quickly();
        daemonJsonLoaded = false; // read back: the editor shows what is stored
        loadDaemonJson();
      } else {
        say("daemon-json-result", `Not saved (${answer.status}): ${text}`, false);
      }
    } catch (error) {
      say("daemon-json-result", `Not saved: ${error}`, false);
    }
  }

  // --- wiring ---------------------------------------------------------------------------------

  function dropTarget(node, take) {
    node.addEventListener("dragover", (event) => { event.preventDefault(); node.classList.add("over"); });
    node.addEventListener("dragleave", () => node.classList.remove("over"));
    node.addEventListener("drop", (event) => {
      event.preventDefault();
      node.classList.remove("over");
      if (mayChange && event.dataTransfer.files.length) take(event.dataTransfer.files);
    });
  }

  $("settings").addEventListener("submit", saveSettings);
  for (const kind of ["input", "change"]) {
    $("settings").addEventListener(kind, (event) => { if (event.target.name) edited.add(event.target.name); });
  }
  for (const button of document.querySelectorAll("button[data-control]")) {
    button.addEventListener("click", () => control(button.dataset.control));
  }
  for (const form of document.querySelectorAll("form.upload")) {
    const name = form.dataset.file;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = form.querySelector("input[type=file]");
      if (input.files.length) uploadOne(name, input.files[0]);
      else say("tls-result", `Choose a file for ${name} first.`, false);
    });
    form.querySelector("button.delete").addEventListener("click", () => remove(name));
    dropTarget(form.closest("article"), (files) => {
      if (files.length === 1) uploadOne(name, files[0]);
      else say("tls-result", `Not uploaded: drop one file on ${name}'s card, or the three on the set's area.`, false);
    });
  }
  $("set-files").addEventListener("change", (event) => { if (event.target.files.length) uploadMany(event.target.files); });
  dropTarget($("tls-set"), uploadMany);
  const daemonForm = $("daemon-json-form");
  if (daemonForm) daemonForm.addEventListener("submit", saveDaemonJson);
  for (const node of document.querySelectorAll("time[datetime]")) node.textContent = when(node.getAttribute("datetime"));
  $("log").scrollTop = $("log").scrollHeight; // the last lines first
  poll();
})();
