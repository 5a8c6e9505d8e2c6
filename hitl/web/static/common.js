// Shared helpers for the pages: JSON requests, small DOM helpers, keys, in-page dialogs, the
// live queue count.
"use strict";
window.hitl = (function () {
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function show(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }
  // At most `n` characters of a value, on one line, with "…" if it was longer.
  function shorten(value, n) {
    var text = show(value).replace(/\s+/g, " ").trim();
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }
  // The end of a task id: ids made close in time share their start (UUIDv7), never their end.
  function shortId(id) { return id ? String(id).slice(-8) : ""; }
  function when(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }
  // A time given as an ISO string, or as epoch seconds (a number, or its text in an attribute).
  function time(at) {
    var seconds = typeof at === "number" ? at : /^\d+(\.\d+)?$/.test(at) ? Number(at) : null;
    return new Date(seconds === null ? at : seconds * 1000);
  }
  // A duration in words: "42 s", "3 min", "2 h 5 min", "3 d 4 h".
  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    var hrs = Math.floor(m / 60);
    if (hrs < 48) return hrs + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    return Math.floor(hrs / 24) + " d" + (hrs % 24 ? " " + (hrs % 24) + " h" : "");
  }
  function waited(at) { return "waiting " + span(Date.now() - time(at).getTime()); }
  // How long ago, in words: "just now", "42 s ago", "3 min ago", "5 h ago", "3 d ago".
  function ago(at) {
    var ms = Date.now() - time(at).getTime();
    if (ms < 5000) return "just now";
    var s = Math.floor(ms / 1000), m = Math.floor(s / 60), hrs = Math.floor(m / 60);
    if (s < 60) return s + " s ago";
    if (m < 60) return m + " min ago";
    return hrs < 48 ? hrs + " h ago" : Math.floor(hrs / 24) + " d ago";
  }
  // A <time> that says how long ago `at` was, kept current, with the date and time on hover.
  function timeAgo(at, attrs) {
    var date = time(at);
    return el("time", Object.assign({datetime: date.toISOString(), title: date.toLocaleString(),
                                     "data-ago": String(at), text: ago(at)}, attrs || {}));
  }
  // A deadline counting down: "4:59 left", "1 h 3 min left", or "past its deadline".
  function left(at) {
    var ms = time(at).getTime() - Date.now();
    if (ms <= 0) return "past its deadline";
    var s = Math.floor(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0") + " left";
    return span(ms) + " left";
  }
  // What a review's deadline will do, in words; "" if it has none. `at`: an ISO time or epoch seconds.
  function deadline(at, onDeadline) {
    if (at === null || at === undefined) return "";
    var clock = time(at).toLocaleTimeString();
    return onDeadline
      ? "Decided “" + onDeadline + "” automatically at " + clock + " unless someone decides first"
      : "The task fails at " + clock + " unless someone decides first";
  }
  // Elements whose text follows the clock: each `data-since` / `data-until` / `data-ago`
  // element is rewritten every second (display only: nothing is fetched).
  function tickNow() {
    document.querySelectorAll("[data-since]").forEach(function (n) { n.textContent = waited(n.dataset.since); });
    document.querySelectorAll("[data-ago]").forEach(function (n) { n.textContent = ago(n.dataset.ago); });
    document.querySelectorAll("[data-until]").forEach(function (n) {
      n.textContent = left(n.dataset.until);
      n.classList.toggle("overdue", time(n.dataset.until).getTime() <= Date.now());
    });
  }
  setInterval(tickNow, 1000);

  // Who is signed in, as the page was served ({name: "", roles: []} without sign-in).
  function me() {
    var body = document.body.dataset;
    return {name: body.user || "", roles: (body.roles || "").split(" ").filter(Boolean)};
  }
  // Whether the person may decide a review: the server says so (`may_decide`); the page keeps
  // no rules of its own.
  function mayDecide(review) { return review.may_decide === true; }
  // Who holds a review's claim (who is reviewing it now), if anyone.
  function claimHolder(review) { return review.claimed_by || null; }

  function signingIn() {  // the sign-in pages, where no one is signed in yet
    var here = window.location.pathname;
    return here.indexOf("/login") === 0 || here.indexOf("/auth/") === 0;
  }
  async function api(method, url, body, headers) {
    var init = {method: method, headers: Object.assign({"Content-Type": "application/json"}, headers || {})};
    if (body !== undefined) init.body = JSON.stringify(body);
    var response;
    try { response = await fetch(url, init); }
    catch (e) { throw new Error("Can't reach the server right now; nothing was sent. Try again in a moment."); }
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    var here = window.location.pathname;
    if (response.status === 401 && !signingIn()) {
      // The session ended: sign in again, then come back here.
      window.location.assign("/login?next=" + encodeURIComponent(here));
    }
    if (!response.ok) {
      var detail = data && data.detail ? data.detail : response.statusText;
      var err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      err.status = response.status; err.body = data;
      throw err;
    }
    return data;
  }

  // Keys. `handlers` maps a key ("j", "Enter", "?", "ctrl+Enter") to a function of the event;
  // one that returns false leaves the key to the browser. Plain keys do nothing while the
  // person types in a field (unless named in `whileTyping`) or a dialog is open; keys with
  // Ctrl (or ⌘) work everywhere but in dialogs.
  // A check box or a button takes no text: keys still work when one has the focus.
  var NOT_TYPED = {checkbox: 1, radio: 1, button: 1, submit: 1, reset: 1};
  function typing(target) {
    var tag = target && target.tagName;
    if (tag === "INPUT") return !NOT_TYPED[target.type];
    return tag === "TEXTAREA" || tag === "SELECT" || !!(target && target.isContentEditable);
  }
  function keys(handlers, whileTyping) {
    document.addEventListener("keydown", function (e) {
      if (e.defaultPrevented || e.altKey || e.isComposing) return;
      var name = (e.ctrlKey || e.metaKey ? "ctrl+" : "") + e.key;
      var fn = handlers[name];
      if (!fn || document.querySelector("dialog[open]")) return;
      var anywhere = name.indexOf("ctrl+") === 0 || (whileTyping || []).indexOf(name) >= 0;
      if (!anywhere && typing(e.target)) return;
      if (fn(e) !== false) e.preventDefault();
    });
  }

  // An in-page question (a modal <dialog>). opts: title, text, confirm (the button's words),
  // danger, reason ({label, placeholder}: a required text box). Resolves to {reason} when the
  // person confirms, or null when they go back (button, or Escape).
  function ask(opts) {
    return new Promise(function (resolve) {
      var reason = opts.reason ? el("textarea", {rows: "3", "data-testid": "ask-reason",
        placeholder: opts.reason.placeholder || "", "aria-label": opts.reason.label}) : null;
      var problem = el("p", {cls: "error", role: "alert", "data-testid": "ask-error"});
      var back = el("button", {type: "button", cls: "secondary", "data-testid": "ask-back", text: opts.back || "Go back"});
      var yes = el("button", {type: "button", cls: opts.danger ? "danger" : "", "data-testid": "ask-confirm", text: opts.confirm});
      var box = el("dialog", {cls: "ask", "data-testid": "ask", "aria-labelledby": "ask-title"}, [
        el("h2", {id: "ask-title", text: opts.title}),
        opts.text ? el("p", {text: opts.text}) : null,
        reason ? el("label", {text: opts.reason.label}) : null,
        reason, problem,
        el("div", {cls: "row"}, [back, yes]),
      ]);
      var done = false;
      function finish(value) {
        if (done) return;
        done = true;
        box.close();
        box.remove();
        resolve(value);
      }
      back.onclick = function () { finish(null); };
      box.addEventListener("cancel", function (e) { e.preventDefault(); finish(null); });
      yes.onclick = function () {
        if (reason && !reason.value.trim()) {
          problem.textContent = "Give a reason: " + opts.reason.label.toLowerCase();
          reason.focus();
          return;
        }
        finish({reason: reason ? reason.value.trim() : null});
      };
      box.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); yes.click(); }
      });
      document.body.appendChild(box);
      box.showModal();
      (reason || back).focus();  // the safe choice has the focus
    });
  }

  // `?` opens the page's help (a <dialog id="help">); Escape, or its button, closes it.
  function help() {
    var box = document.getElementById("help");
    if (box && !box.open) box.showModal();
  }

  async function refreshQueueCount() {
    var badge = document.getElementById("queue-count");
    if (!badge) return;
    try {
      // Only the open reviews this person may decide (the server's rule: `may_decide`).
      var data = await api("GET", "/api/v1/reviews?status=open&decidable=true&limit=1");
      badge.textContent = data.count ? String(data.count) : "";
    } catch (e) { /* the count is a hint; the queue page shows errors */ }
  }
  var listeners = [];
  function onAnyEvent(fn) { listeners.push(fn); }
  function followAll() {
    var source = new EventSource("/api/v1/events");
    // On every (re)connection, pages reload their lists: nothing that changed meanwhile is missed.
    source.onopen = function () { refreshQueueCount(); listeners.forEach(function (fn) { fn("open", {}); }); };
    // review.voted too: a voter may not decide that review again, so their count and queue drop it.
    ["task.created", "task.running", "review.requested", "review.voted", "review.decided",
     "review.escalated", "review.claimed", "review.released", "task.completed", "task.failed",
     "task.cancelled"].forEach(function (type) {
      source.addEventListener(type, function (ev) {
        var data = JSON.parse(ev.data);
        var claims = type === "review.claimed" || type === "review.released";  // the count stays
        if ((type.indexOf("review.") === 0 && !claims) || type === "task.cancelled") refreshQueueCount();
        listeners.forEach(function (fn) { fn(type, data); });
      });
    });
    return source;
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (signingIn()) return;  // nobody is signed in yet
    refreshQueueCount(); followAll();
  });
  return {el: el, show: show, shorten: shorten, shortId: shortId, when: when, time: time, waited: waited,
          ago: ago, timeAgo: timeAgo,
          left: left, deadline: deadline, tick: tickNow, me: me, mayDecide: mayDecide,
          claimHolder: claimHolder, api: api, keys: keys, typing: typing, ask: ask, help: help,
          onAnyEvent: onAnyEvent, refreshQueueCount: refreshQueueCount};
})();
