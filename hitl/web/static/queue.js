// The reviewers' queue: the open reviews the person may decide (the server picks them:
// `decidable=true`), or the decided, expired or cancelled ones, as the filters say; refreshed
// from the live event stream (no polling), paged 50 at a time, and driven from the keyboard.
// Who is reviewing each one (its claim) updates live. Reviews whose node allows it (`bulk`) are
// ticked and approved or rejected together.
"use strict";
(function () {
  var h = window.hitl;
  var $ = function (id) { return document.getElementById(id); };
  var PAGE = 50, MAX_LIMIT = 500;  // MAX_LIMIT: the API's largest page
  var QUEUE_KEY = "hitl.queue";  // sessionStorage: the task this tab opened from the queue
  var SEARCH_DELAY = 300;  // ms after the last key before a search is sent
  var state = {wanted: PAGE, rows: [], count: 0, total: 0, selected: null, index: 0, loading: null,
               ticked: new Set(), sending: false};

  // --- the filters, kept in the address (a reload or a shared link shows the same list) ------

  var DEFAULTS = {status: "open", flow: "", q: "", mine: false, sort: "oldest"};
  var STATUS_WORDS = {open: "open", decided: "decided", expired: "expired", cancelled: "cancelled"};
  var ABOUT = {open: "Open reviews you may decide", decided: "Decided reviews",
               expired: "Reviews whose deadline passed undecided", cancelled: "Reviews of cancelled tasks"};
  var ORDER = {oldest: "oldest first", newest: "newest first", deadline: "nearest deadline first"};

  function choices(select) {
    return Array.prototype.map.call(select.options, function (o) { return o.value; });
  }
  // The filters the address asks for; a value the page does not offer (a flow the server no
  // longer runs, a typo) is left out, as if it were not there.
  function fromAddress() {
    var params = new URLSearchParams(window.location.search);
    function pick(name, select) {
      var value = params.get(name);
      return value !== null && choices(select).indexOf(value) >= 0 ? value : DEFAULTS[name];
    }
    return {
      status: pick("status", $("filter-status")),
      flow: pick("flow", $("filter-flow")),
      q: (params.get("q") || "").slice(0, 200),
      mine: params.get("mine") === "true" || params.get("mine") === "1",
      sort: pick("sort", $("filter-sort")),
    };
  }
  function toControls(f) {
    $("filter-status").value = f.status;
    $("filter-flow").value = f.flow;
    $("filter-q").value = f.q;
    $("filter-mine").checked = f.mine;
    $("filter-sort").value = f.sort;
  }
  function fromControls() {
    return {status: $("filter-status").value, flow: $("filter-flow").value, q: $("filter-q").value.trim(),
            mine: $("filter-mine").checked, sort: $("filter-sort").value};
  }
  // The query string of the filters that differ from the defaults (the address, and the API's).
  function query(f) {
    var params = new URLSearchParams();
    ["status", "flow", "q", "sort"].forEach(function (name) {
      if (f[name] !== DEFAULTS[name]) params.set(name, f[name]);
    });
    if (f.mine) params.set("mine", "true");
    return params.toString();
  }
  // Whether the filters leave some reviews of their status out (the order leaves none out).
  function narrowed(f) { return !!(f.flow || f.q || f.mine); }
  var filters = fromAddress();

  function setFilters(f) {
    if (query(f) === query(filters)) return;
    filters = f;
    var search = query(f);
    window.history.replaceState(null, "", "/reviews" + (search ? "?" + search : ""));
    state.wanted = PAGE;
    state.index = 0;
    $("bulk-results").hidden = true;
    reload();
  }

  // --- loading -------------------------------------------------------------------------------

  function apiQuery(f, extra) {
    var params = new URLSearchParams({status: f.status, sort: f.sort});
    if (f.flow) params.set("flow", f.flow);
    if (f.q) params.set("q", f.q);
    if (f.mine) params.set("mine", "true");
    Object.keys(extra).forEach(function (k) { params.set(k, extra[k]); });
    return "/api/v1/reviews?" + params.toString();
  }
  // The first `n` reviews (several requests when n is past the API's largest page). Open ones:
  // only those the person may decide; `total` counts every open one the filters keep, so the
  // page can say how many it leaves out.
  async function fetchFirst(f, n) {
    var rows = [], count = 0, open = f.status === "open";
    // Asked beside the pages; its failure is kept until then (an unhandled one would be an error).
    var total = open ? h.api("GET", apiQuery(f, {limit: 1})).catch(function (err) { return err; }) : null;
    while (rows.length < n) {
      var limit = Math.min(MAX_LIMIT, n - rows.length);
      var extra = {limit: limit, offset: rows.length};
      if (open) extra.decidable = "true";
      var data = await h.api("GET", apiQuery(f, extra));
      rows = rows.concat(data.data);
      count = data.count;
      if (data.data.length < limit) break;
    }
    var all = open ? await total : {count: count};
    if (all instanceof Error) throw all;
    return {rows: rows, count: count, total: all.count};
  }

  // --- rows ----------------------------------------------------------------------------------

  var DECIDED = {approve: "Approved", reject: "Rejected", edit: "Edited and approved"};
  function bulky(r) { return h.mayDecide(r) && r.bulk === true; }
  function outcome(r) {
    if (r.status === "decided") {
      var words = (DECIDED[r.decision] || r.decision) + (r.decided_by ? " by " + r.decided_by : "");
      if (r.decided_at) words += " at " + h.when(r.decided_at);
      return words + (r.comment ? ": “" + h.shorten(r.comment, 120) + "”" : "");
    }
    return r.status === "expired" ? "Expired: its deadline passed with no decision" : "Cancelled with its task";
  }

  function row(r) {
    var open = r.status === "open";
    var tick = bulky(r) ? h.el("input", {type: "checkbox", cls: "tick", "data-testid": "queue-tick",
      "aria-label": "Tick task " + h.shortId(r.task_id) + " to decide it with others"}) : null;
    var head = [
      tick,
      h.el("a", {href: "/tasks/" + r.task_id, cls: "open", title: "Task " + r.task_id}, [
        h.el("span", {text: "Task "}), h.el("code", {"data-testid": "short-id", text: h.shortId(r.task_id)}),
      ]),
      r.flow ? h.el("span", {cls: "tag", "data-testid": "queue-flow", text: r.flow}) : null,
      h.el("span", {cls: "muted", "data-testid": "queue-round", text: "round " + r.round}),
      open ? h.el("span", {cls: "muted", "data-testid": "queue-waited", "data-since": r.created_at, text: h.waited(r.created_at)})
           : h.el("span", {cls: "muted", "data-testid": "queue-asked", text: "asked " + h.when(r.created_at)}),
      open && r.deadline ? h.el("span", {cls: "countdown", "data-testid": "queue-countdown", "data-until": r.deadline, text: h.left(r.deadline)}) : null,
    ];
    var who = [
      r.assignees && r.assignees.length ? h.el("span", {"data-testid": "queue-assignees", text: "for " + r.assignees.join(", ")}) : null,
      h.el("span", {cls: "claim", "data-testid": "queue-claim"}),
    ];
    var li = h.el("li", {cls: "queue-item", id: "review-" + r.id, "data-review-id": r.id, "data-task-id": r.task_id,
                         "aria-selected": "false"}, [
      h.el("div", {cls: "row head"}, head),
      r.prompt ? h.el("p", {cls: "prompt", "data-testid": "queue-prompt", text: r.prompt}) : null,
      open ? null : h.el("p", {cls: "decision " + (r.decision || r.status), "data-testid": "queue-decision", text: outcome(r)}),
      h.el("p", {cls: "who muted"}, who),
      open && r.deadline ? h.el("p", {cls: "deadline", "data-testid": "queue-deadline", text: h.deadline(r.deadline, r.on_deadline)}) : null,
      r.input !== undefined && r.input !== null ? h.el("p", {cls: "input"}, [h.el("span", {cls: "muted", text: "Input: "}),
        h.el("span", {"data-testid": "queue-input", text: h.shorten(r.input, 160)})]) : null,
      h.el("pre", {cls: "output", "data-testid": "queue-output", text: h.shorten(r.output, 300)}),
    ]);
    if (tick) {
      tick.checked = state.ticked.has(r.id);
      li.classList.toggle("ticked", tick.checked);
    }
    return li;
  }

  // A claim counts until it ends (a tab that crashed never says it left).
  function holder(r) {
    var by = h.claimHolder(r);
    return by && (!r.claimed_until || h.time(r.claimed_until).getTime() > Date.now()) ? by : null;
  }
  function showClaim(li, r) {
    var by = r.status === "open" ? holder(r) : null, span = li.querySelector("[data-testid=queue-claim]");
    span.textContent = by ? "being reviewed by " + (by === h.me().name ? "you" : by) : "";
    span.hidden = !by;
    span.parentNode.hidden = !span.parentNode.textContent;
  }
  // Claims end by themselves: look again when the first one on show does.
  var expiry = null;
  function watchClaims() {
    clearTimeout(expiry);
    var ends = state.rows.filter(holder).map(function (r) { return h.time(r.claimed_until).getTime(); });
    if (ends.length) expiry = setTimeout(claims, Math.max(0, Math.min.apply(null, ends) - Date.now()) + 250);
  }
  function claims() {
    state.rows.forEach(function (r) {
      var li = document.getElementById("review-" + r.id);
      if (li) showClaim(li, r);
    });
    watchClaims();
  }
  // A claim or its end, from the event stream: that row changes, nothing is fetched.
  function claimed(type, data) {
    // A list being read now may have been read before this change: read it again after.
    if (state.loading) again = true;
    var r = state.rows.find(function (x) { return x.id === data.review_id; });
    if (!r) return;
    if (type === "review.claimed") {
      r.claimed_by = data.claimed_by;
      r.claimed_until = data.claimed_until;
    } else { r.claimed_by = null; r.claimed_until = null; }
    claims();
  }

  function items() { return document.querySelectorAll("#queue .queue-item"); }
  function select(index) {
    var all = items();
    if (!all.length) { state.selected = null; return; }
    state.index = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (li, i) {
      var on = i === state.index;
      li.classList.toggle("selected", on);
      li.setAttribute("aria-selected", on ? "true" : "false");
      if (on) { state.selected = li.dataset.reviewId; if (li.scrollIntoView) li.scrollIntoView({block: "nearest"}); }
    });
  }

  function shown() {
    // Open: the server sent only those the person may decide (one decided meanwhile may
    // still come, until the next load). Otherwise every row, to read.
    return filters.status === "open" ? state.rows.filter(h.mayDecide) : state.rows;
  }

  function render() {
    var list = $("queue");
    var rows = shown();
    list.replaceChildren.apply(list, rows.map(row));
    claims();
    var open = filters.status === "open";
    var hidden = open ? Math.max(0, state.total - state.count) : 0;
    $("empty").hidden = rows.length > 0 || state.rows.length < state.count;
    $("empty").textContent = narrowed(filters) ? "No reviews match these filters."
      : open ? "Nothing waiting for review." : "No " + STATUS_WORDS[filters.status] + " reviews.";
    $("queue-hidden").hidden = !hidden;
    $("queue-hidden").textContent = !hidden ? "" : hidden + (hidden === 1 ? " more is" : " more are") +
      " not shown: you may read " + (hidden === 1 ? "it" : "them") + " but not decide " + (hidden === 1 ? "it" : "them") +
      " (assigned to others, or your own tasks).";
    $("queue-total").textContent = state.count ? state.count + " " + STATUS_WORDS[filters.status] +
      (state.rows.length < state.count ? ", " + state.rows.length + " shown" : "") : "";
    $("queue-about").textContent = ABOUT[filters.status] + ", " + ORDER[filters.sort] +
      (filters.flow ? ", of the flow " + filters.flow : "") + (filters.mine ? ", assigned to you" : "") +
      (filters.q ? ", with “" + filters.q + "”" : "") + ".";
    $("filter-clear").hidden = query(filters) === "";
    var more = $("load-more");
    more.hidden = state.rows.length >= state.count;
    more.textContent = "Show " + Math.min(PAGE, state.count - state.rows.length) + " more";
    showBulk();
    // The selection stays on its review; if that one left, on the row that took its place.
    var at = rows.findIndex(function (r) { return r.id === state.selected; });
    select(at >= 0 ? at : state.index);
  }

  async function load() {
    var problem = $("queue-error");
    var asked = query(filters), data;
    try { data = await fetchFirst(filters, state.wanted); }
    catch (err) { problem.textContent = err.message; problem.hidden = false; return; }
    if (asked !== query(filters)) { again = true; return; }  // the filters changed meanwhile
    problem.hidden = true;
    state.rows = data.rows;
    state.count = data.count;
    state.total = data.total;
    render();
  }
  // One load at a time; a change while one runs loads again after it.
  var again = false;
  async function reload() {
    if (state.loading) { again = true; return state.loading; }
    state.loading = load();
    await state.loading;
    state.loading = null;
    if (again) { again = false; return reload(); }
  }
  function more() { state.wanted = state.rows.length + PAGE; return reload(); }

  // --- deciding several at once --------------------------------------------------------------

  function tickable() { return shown().filter(bulky); }
  function tickedRows() { return tickable().filter(function (r) { return state.ticked.has(r.id); }); }
  function showBulk() {
    var can = tickable();
    // Ticks stay on the reviews still listed that may be decided together; the others go.
    var ids = new Set(can.map(function (r) { return r.id; }));
    state.ticked.forEach(function (id) { if (!ids.has(id)) state.ticked.delete(id); });
    $("bulk").hidden = can.length === 0;
    var n = state.ticked.size;
    $("bulk-count").textContent = n ? n + " selected" : "None selected";
    $("bulk-all").checked = n > 0 && n === can.length;
    $("bulk-all").indeterminate = n > 0 && n < can.length;
    $("bulk-approve").disabled = $("bulk-reject").disabled = !n || state.sending;
    $("bulk-approve").textContent = n ? "Approve " + n + " selected" : "Approve selected";
    $("bulk-reject").textContent = n ? "Reject " + n + " selected…" : "Reject selected…";
  }
  function tick(li, on) {
    var box = li && li.querySelector("input.tick");
    if (!box) return false;
    box.checked = on === undefined ? !box.checked : on;
    li.classList.toggle("ticked", box.checked);
    if (box.checked) state.ticked.add(li.dataset.reviewId); else state.ticked.delete(li.dataset.reviewId);
    showBulk();
    return true;
  }

  // Decisions that need a comment, as the review API says (`comment_asked`: those the node
  // names, and a rejection), and those the node wants confirmed first; as on a review's page.
  function needsComment(r, decision) { return (r.comment_asked || []).indexOf(decision) >= 0; }
  function isDangerous(r, decision) { return (r.dangerous || []).indexOf(decision) >= 0; }

  async function decideTicked(decision) {
    var rows = tickedRows();
    if (!rows.length || state.sending) return;
    var n = rows.length, what = n === 1 ? "1 review" : n + " reviews";
    var comment = rows.some(function (r) { return needsComment(r, decision); });
    var confirm = comment || rows.some(function (r) { return isDangerous(r, decision); });
    var answer = {reason: null};
    if (confirm) {
      answer = await h.ask({
        title: (decision === "reject" ? "Reject " : "Approve ") + what + "?",
        text: "Each is decided on its own, as you saw it here" +
          (comment ? ", with this comment." : "."),
        confirm: (decision === "reject" ? "Reject " : "Approve ") + what,
        danger: decision === "reject",
        reason: comment ? {label: decision === "reject" ? "Comment (what should the next revision change?)" : "Comment",
                           placeholder: "Sent with each decision"} : null,
      });
      if (!answer) return;
    }
    var seen = {};
    rows.forEach(function (r) { seen[r.id] = {round: r.round, content_hash: r.content_hash}; });
    var body = {review_ids: rows.map(function (r) { return r.id; }), decision: decision, seen: seen};
    if (answer.reason) body.comment = answer.reason;
    state.sending = true;
    showBulk();
    try {
      var data = await h.api("POST", "/api/v1/reviews/decisions", body);
      report(decision, rows, data.results);
    } catch (err) {
      report(decision, rows, null, err.message);
    } finally {
      state.sending = false;
      showBulk();
    }
    reload();
    h.refreshQueueCount();
  }

  // What became of each: decided, or refused and why. The refused stay ticked, to try again.
  var DONE = {approve: "approved", reject: "rejected"};
  function report(decision, rows, results, problem) {
    var byId = {};
    rows.forEach(function (r) { byId[r.id] = r; });
    var lines = [], ok = 0;
    (results || []).forEach(function (res) {
      var r = byId[res.review_id] || {};
      var good = res.status === 200;
      if (good) { ok += 1; state.ticked.delete(res.review_id); }
      lines.push(h.el("li", {cls: good ? "ok" : "refused", "data-testid": "bulk-result", "data-review-id": res.review_id,
                             "data-outcome": good ? "decided" : "refused"}, [
        h.el("a", {href: "/tasks/" + r.task_id}, [h.el("span", {text: "Task "}), h.el("code", {text: h.shortId(r.task_id)})]),
        h.el("span", {text: good ? ": " + DONE[decision] : ": not " + DONE[decision] + " — " + (res.detail || "refused")}),
      ]));
    });
    var refused = (results || []).length - ok;
    $("bulk-summary").textContent = problem ? "Nothing was decided: " + problem
      : (ok ? ok + " " + DONE[decision] : "None " + DONE[decision]) + (refused ? ", " + refused + " refused." : ".");
    $("bulk-results").classList.toggle("has-refused", !!(problem || refused));
    $("bulk-list").replaceChildren.apply($("bulk-list"), lines);
    $("bulk-results").hidden = false;
    state.rows.forEach(function (r) {
      var li = document.getElementById("review-" + r.id);
      if (li) tick(li, state.ticked.has(r.id));
    });
  }

  // --- the page's controls and keys ----------------------------------------------------------

  function open(li) {
    if (!li) return;
    try { window.sessionStorage.setItem(QUEUE_KEY, li.dataset.taskId); } catch (e) { /* no queue mode */ }
    window.location.assign("/tasks/" + li.dataset.taskId);
  }
  function selectedRow() { return items()[state.index]; }

  $("queue").addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.open");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    open(link.closest(".queue-item"));
  });
  $("queue").addEventListener("change", function (e) {
    if (!e.target.classList.contains("tick")) return;
    var li = e.target.closest(".queue-item");
    tick(li, e.target.checked);
    select(Array.prototype.indexOf.call(items(), li));
  });
  $("bulk-all").onchange = function () {
    var on = $("bulk-all").checked;
    items().forEach(function (li) { tick(li, on); });
  };
  $("bulk-approve").onclick = function () { decideTicked("approve"); };
  $("bulk-reject").onclick = function () { decideTicked("reject"); };
  $("bulk-dismiss").onclick = function () { $("bulk-results").hidden = true; };
  $("load-more").onclick = more;
  $("help-open").onclick = h.help;

  // Lists and boxes apply at once; the search box after a pause in typing (or at Enter).
  var typed = null;
  function applyNow() { clearTimeout(typed); setFilters(fromControls()); }
  $("filters").addEventListener("submit", function (e) { e.preventDefault(); applyNow(); });
  $("filters").addEventListener("change", function (e) { if (e.target !== $("filter-q")) applyNow(); });
  $("filter-q").addEventListener("input", function () {
    clearTimeout(typed);
    typed = setTimeout(applyNow, SEARCH_DELAY);
  });
  $("filter-q").addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    e.preventDefault();  // leave the box with what it holds (a search box's Escape would empty it)
    applyNow();
    $("filter-q").blur();
  });
  $("filter-clear").onclick = function () {
    toControls(DEFAULTS);
    applyNow();
  };

  h.keys({
    "j": function () {
      var count = items().length;
      if (state.index >= count - 1 && state.rows.length < state.count) {
        more().then(function () { select(state.index + 1); });
      } else select(state.index + 1);
    },
    "k": function () { select(state.index - 1); },
    "x": function () { return tick(selectedRow()) ? undefined : false; },
    "/": function () { $("filter-q").focus(); $("filter-q").select(); },
    "Enter": function (e) {
      var tag = e.target && e.target.tagName;
      if (tag === "A" && e.target.closest(".queue-item")) return open(e.target.closest(".queue-item"));
      if (tag === "BUTTON" || tag === "A") return false;  // the browser presses or follows it
      if (e.target.closest && e.target.closest("#filters, #bulk")) return false;
      open(selectedRow());
    },
    "?": h.help,
  });

  var pending = null;
  h.onAnyEvent(function (type, data) {
    if (type === "review.claimed" || type === "review.released") return claimed(type, data);
    if (type === "open" || type.indexOf("review.") === 0 || FINISHED[type]) {
      clearTimeout(pending); pending = setTimeout(reload, 100);
    }
  });
  var FINISHED = {"task.completed": 1, "task.failed": 1, "task.cancelled": 1};
  toControls(filters);
  window.history.replaceState(null, "", "/reviews" + (query(filters) ? "?" + query(filters) : ""));
  reload();
})();
