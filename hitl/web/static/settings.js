// Notifications, for admins: the channels (removed ones greyed, last), adding one (a webhook's
// signing secret shown this once), and the delivery log with its filters and Replay. The page
// drives the API (/api/v1/channels, /api/v1/deliveries); the server decides and words every
// refusal, and the page shows it where it belongs.
"use strict";
(function () {
  var h = window.hitl;
  var $ = function (id) { return document.getElementById(id); };
  var LIMIT = 100;  // deliveries shown: the newest
  var FOLLOW_MS = 2000;  // while a shown delivery is pending and the page is in view
  var channels = [];

  // --- channels --------------------------------------------------------------------------------

  // Enabled ones first, oldest first (as the server lists them); then the removed ones.
  function ordered(rows) {
    return rows.filter(function (c) { return !c.removed_at; })
      .concat(rows.filter(function (c) { return c.removed_at; }));
  }
  function channelItem(c) {
    var removed = !!c.removed_at;
    var head = h.el("div", {cls: "row head"}, [
      h.el("strong", {cls: "name", text: c.name}),
      h.el("span", {cls: "badge kind", text: c.kind === "apprise" ? "Apprise" : "webhook"}),
      removed ? h.el("span", {cls: "badge", text: "removed"}) : null,
    ]);
    if (!removed) {
      var remove = h.el("button", {type: "button", cls: "secondary remove", "data-testid": "remove",
                                   "aria-label": "Remove the channel " + c.name, text: "Remove…"});
      remove.addEventListener("click", function () { removeChannel(c, remove); });
      head.appendChild(remove);
    }
    var added = [h.el("span", {text: "Added" + (c.created_by ? " by " + c.created_by : "") + " "}),
                 h.timeAgo(c.created_at)];
    if (removed) added.push(h.el("span", {text: " · removed "}), h.timeAgo(c.removed_at));
    return h.el("li", {cls: "channel" + (removed ? " removed" : ""), "data-name": c.name,
                       "data-testid": "channel"}, [
      head,
      h.el("code", {cls: "url", "data-testid": "channel-url", text: c.url}),
      h.el("ul", {cls: "event-tags", "aria-label": "Events"}, c.events.map(function (e) {
        return h.el("li", {cls: "tag", text: e});
      })),
      h.el("p", {cls: "added muted"}, added),
    ]);
  }
  async function loadChannels() {
    try {
      channels = (await h.api("GET", "/api/v1/channels")).data;
      $("channels-error").textContent = "";
    } catch (err) {
      $("channels-error").textContent = "The channels could not be read: " + err.message;
      return;
    }
    var list = $("channels");
    list.replaceChildren.apply(list, ordered(channels).map(channelItem));
    $("channels-empty").hidden = channels.length > 0;
    channelChoices();
  }
  async function removeChannel(c, button) {
    var answer = await h.ask({
      title: "Remove the channel “" + c.name + "”?",
      text: "It receives no events from now on. Its delivery log stays, and so does its name: " +
            "a new channel needs another one.",
      confirm: "Remove " + c.name, danger: true,
    });
    if (!answer) { button.focus(); return; }
    try {
      await h.api("DELETE", "/api/v1/channels/" + encodeURIComponent(c.name));
      $("channels-error").textContent = "";
    } catch (err) {
      $("channels-error").textContent = "“" + c.name + "” was not removed: " + err.message;
    }
    await loadChannels();
    loadLog();
    $("channels-title").focus();
  }

  // --- adding one ------------------------------------------------------------------------------

  var form = $("add-form");
  var touched = false;  // the person ticked or unticked an event: a change of kind keeps theirs
  function kind() { return form.querySelector("input[name=kind]:checked"); }
  function boxes() { return Array.prototype.slice.call(form.querySelectorAll("input[name=events]")); }
  function fitKind() {
    var chosen = kind();
    $("ch-url").placeholder = chosen.dataset.example;
    if (touched) return;
    var defaults = chosen.dataset.defaults.split(" ");
    boxes().forEach(function (b) { b.checked = defaults.indexOf(b.value) >= 0; });
  }
  form.querySelectorAll("input[name=kind]").forEach(function (r) { r.addEventListener("change", fitKind); });
  boxes().forEach(function (b) { b.addEventListener("change", function () { touched = true; }); });

  // The field a refusal is about: `url: ...` (the service's words), `body.url: ...` (the
  // request's validation), a name taken (409).
  function fieldOf(err) {
    if (err.status === 409) return $("ch-name");
    var m = /^(?:invalid request: body\.)?(name|url|events|kind)\b/.exec(err.message);
    if (!m) return null;
    return {name: $("ch-name"), url: $("ch-url"), events: boxes()[0], kind: kind()}[m[1]];
  }
  function problem(words, field) {
    $("add-error").textContent = words;
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  }
  form.addEventListener("input", function (e) { e.target.removeAttribute("aria-invalid"); });
  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    form.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
    $("add-error").textContent = "";
    var body = {name: $("ch-name").value.trim(), kind: kind().value, url: $("ch-url").value.trim(),
                events: boxes().filter(function (b) { return b.checked; }).map(function (b) { return b.value; })};
    if (!body.name) return problem("Give the channel a name.", $("ch-name"));
    if (!body.url) return problem("Give the URL to send to (an example is in its box).", $("ch-url"));
    if (!body.events.length) return problem("Tick at least one event for it to receive.", boxes()[0]);
    $("add-submit").disabled = true;
    try {
      var made = await h.api("POST", "/api/v1/channels", body);
      added(made);
    } catch (err) {
      problem(err.message, fieldOf(err));
    } finally {
      $("add-submit").disabled = false;
    }
  });
  function added(made) {
    form.reset();
    touched = false;
    fitKind();
    hideSecret();
    var words = "Added " + made.name + " (" + made.kind + "): it receives " + made.events.join(", ") + ".";
    $("add-done").textContent = words;
    $("add-done").hidden = false;
    if (made.secret) showSecret(made.name, made.secret);
    loadChannels();
    loadLog();
  }

  // A webhook's signing secret: in this page's memory only, until hidden or the page goes.
  function showSecret(name, secret) {
    $("secret-name").textContent = name;
    $("secret-value").value = secret;
    $("secret-copied").textContent = "";
    $("secret").hidden = false;
    $("secret").scrollIntoView({block: "nearest"});
    $("secret-value").focus();
    $("secret-value").select();
  }
  function hideSecret() {
    $("secret-value").value = "";
    $("secret").hidden = true;
  }
  $("secret-copy").addEventListener("click", async function () {
    var value = $("secret-value").value;
    try {
      await navigator.clipboard.writeText(value);
    } catch (e) {  // no clipboard API here (an insecure origin): the selection's copy
      $("secret-value").select();
      if (!document.execCommand("copy")) {
        $("secret-copied").textContent = "Could not copy: select it and copy it yourself.";
        return;
      }
    }
    $("secret-copied").textContent = "Copied.";
  });
  $("secret-done").addEventListener("click", function () {
    hideSecret();
    $("add-done").hidden = true;
    $("ch-name").focus();
  });

  // --- the delivery log ----------------------------------------------------------------------

  // The filters live in the address (/settings?channel=ops&status=failed).
  function filters() { return {channel: $("log-channel").value, status: $("log-status").value}; }
  function query(f) {
    var params = new URLSearchParams();
    if (f.channel) params.set("channel", f.channel);
    if (f.status) params.set("status", f.status);
    return params.toString();
  }
  var wanted = new URLSearchParams(window.location.search);
  if (["pending", "delivered", "failed"].indexOf(wanted.get("status")) >= 0) $("log-status").value = wanted.get("status");

  // Every channel that has a log, removed ones too (their deliveries stay). The address's
  // channel is chosen once the channels are known; one that is not there is dropped from it.
  function channelChoices() {
    var select = $("log-channel");
    var current = wanted.has("channel") ? wanted.get("channel") : select.value;
    wanted.delete("channel");
    var options = [h.el("option", {value: "", text: "All channels"})].concat(ordered(channels).map(function (c) {
      return h.el("option", {value: c.name, text: c.name + (c.removed_at ? " (removed)" : "")});
    }));
    select.replaceChildren.apply(select, options);
    select.value = channels.some(function (c) { return c.name === current; }) ? current : "";
    if (select.value !== current) toAddress();
  }
  function toAddress() {
    var search = query(filters());
    window.history.replaceState(null, "", "/settings" + (search ? "?" + search : ""));
  }
  function filtersChanged() { toAddress(); loadLog(); }
  $("log-channel").addEventListener("change", filtersChanged);
  $("log-status").addEventListener("change", filtersChanged);
  $("log-filters").addEventListener("submit", function (e) { e.preventDefault(); filtersChanged(); });

  var STATUS = {pending: "pending", delivered: "delivered", failed: "failed"};
  function lastAnswer(d) {
    var parts = [];
    if (d.last_code !== null && d.last_code !== undefined) parts.push(h.el("code", {text: String(d.last_code)}));
    if (d.last_error) parts.push(h.el("span", {cls: "why", title: d.last_error, text: h.shorten(d.last_error, 80)}));
    if (!parts.length) parts.push(h.el("span", {cls: "muted", text: d.attempts ? "" : "not sent yet"}));
    return parts;
  }
  function statusCell(d) {
    var badge = h.el("span", {cls: "badge delivery-" + d.status, "data-testid": "delivery-status",
                              text: STATUS[d.status] || d.status});
    var more = null;
    if (d.status === "pending" && d.attempts && d.next_attempt_at) {
      more = h.el("span", {cls: "muted next", text: " retrying at " + h.when(d.next_attempt_at)});
    }
    return [badge, more];
  }
  function replayable(d) {
    if (d.status !== "delivered" && d.status !== "failed") return false;
    var channel = channels.filter(function (c) { return c.name === d.channel; })[0];
    return !channel || !channel.removed_at;  // a removed channel's: the server would refuse
  }
  function deliveryRow(d) {
    var action = null;
    if (replayable(d)) {
      action = h.el("button", {type: "button", cls: "secondary replay", "data-testid": "replay",
                               "aria-label": "Replay the " + d.type + " delivery to " + d.channel,
                               text: "Replay"});
      action.addEventListener("click", function () { replay(d, action); });
    }
    function cell(label, children, cls) {
      return h.el("td", {"data-label": label, cls: cls || ""}, children);
    }
    var task = h.el("a", {href: "/tasks/" + d.task_id, title: d.task_id, "data-testid": "delivery-task"},
                    [h.el("code", {text: h.shortId(d.task_id)})]);
    return h.el("tr", {cls: "delivery " + d.status, "data-id": d.id, "data-testid": "delivery"}, [
      cell("When", [h.timeAgo(d.created_at)]),
      cell("Channel", [h.el("span", {text: d.channel})]),
      cell("Event", [h.el("code", {text: d.type})]),
      cell("Task", [task]),
      cell("Status", statusCell(d)),
      cell("Tries", [h.el("span", {"data-testid": "delivery-tries", text: String(d.attempts)})]),
      cell("Last answer", lastAnswer(d), "answer"),
      cell("", [action], "actions"),
    ]);
  }

  // One request at a time; one asked for meanwhile runs after it, with the filters then.
  var loading = null, again = false, follow = null;
  function loadLog() {
    if (loading) { again = true; return loading; }
    loading = readLog().finally(function () {
      loading = null;
      if (again) { again = false; loadLog(); }
    });
    return loading;
  }
  async function readLog() {
    var f = filters();
    var params = new URLSearchParams({limit: String(LIMIT)});
    if (f.channel) params.set("channel", f.channel);
    if (f.status) params.set("status", f.status);
    var rows;
    try {
      rows = (await h.api("GET", "/api/v1/deliveries?" + params.toString())).data;
      $("log-error").textContent = "";
    } catch (err) {
      $("log-error").textContent = "The delivery log could not be read: " + err.message;
      return;
    }
    var body = $("delivery-rows");
    body.replaceChildren.apply(body, rows.map(deliveryRow));
    var narrowed = f.channel || f.status;
    $("log-empty").hidden = rows.length > 0;
    $("log-empty").textContent = narrowed ? "No deliveries match these filters." : "No deliveries yet.";
    $("log-about").textContent = rows.length >= LIMIT ? "the newest " + LIMIT : rows.length === 1 ? "1 delivery" : rows.length ? rows.length + " deliveries" : "";
    followPending(rows.some(function (d) { return d.status === "pending"; }));
  }
  // Deliveries change without an event of their own: while one shown is pending, read again.
  function followPending(pending) {
    clearTimeout(follow);
    follow = null;
    if (pending && document.visibilityState === "visible") follow = setTimeout(loadLog, FOLLOW_MS);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") loadLog();
  });

  async function replay(d, button) {
    button.disabled = true;
    try {
      await h.api("POST", "/api/v1/deliveries/" + encodeURIComponent(d.id) + "/replay");
      $("log-error").textContent = "";
    } catch (err) {
      $("log-error").textContent = "Not replayed: " + err.message;
      button.disabled = false;
      return;
    }
    await loadLog();
  }

  // An event may make deliveries (a review requested, a task completed): read the log again.
  var soon = null;
  h.onAnyEvent(function () {
    clearTimeout(soon);
    soon = setTimeout(loadLog, 400);
  });

  fitKind();
  loadChannels().then(function () { return loadLog(); });
})();
