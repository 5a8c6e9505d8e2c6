// The reviewers' queue: every open review the person may decide (the server says which:
// `may_decide`), oldest first, refreshed from the live event stream (no polling), paged 50 at a
// time, and driven from the keyboard. Who is reviewing each one (its claim) updates live.
"use strict";
(function () {
  var h = window.hitl;
  var $ = function (id) { return document.getElementById(id); };
  var PAGE = 50, MAX_LIMIT = 500;  // MAX_LIMIT: the API's largest page
  var QUEUE_KEY = "hitl.queue";  // sessionStorage: the task this tab opened from the queue
  var state = {wanted: PAGE, rows: [], count: 0, selected: null, index: 0, loading: null};

  // The first `n` open reviews (several requests when n is past the API's largest page).
  async function fetchFirst(n) {
    var rows = [], count = 0;
    while (rows.length < n) {
      var limit = Math.min(MAX_LIMIT, n - rows.length);
      var data = await h.api("GET", "/api/v1/reviews?status=open&limit=" + limit + "&offset=" + rows.length);
      rows = rows.concat(data.data);
      count = data.count;
      if (data.data.length < limit) break;
    }
    return {rows: rows, count: count};
  }

  function row(r) {
    var head = [
      h.el("a", {href: "/tasks/" + r.task_id, cls: "open", title: "Task " + r.task_id}, [
        h.el("span", {text: "Task "}), h.el("code", {"data-testid": "short-id", text: h.shortId(r.task_id)}),
      ]),
      r.flow ? h.el("span", {cls: "tag", "data-testid": "queue-flow", text: r.flow}) : null,
      h.el("span", {cls: "muted", "data-testid": "queue-round", text: "round " + r.round}),
      h.el("span", {cls: "muted", "data-testid": "queue-waited", "data-since": r.created_at, text: h.waited(r.created_at)}),
      r.deadline ? h.el("span", {cls: "countdown", "data-testid": "queue-countdown", "data-until": r.deadline, text: h.left(r.deadline)}) : null,
    ];
    var who = [
      r.assignees && r.assignees.length ? h.el("span", {"data-testid": "queue-assignees", text: "for " + r.assignees.join(", ")}) : null,
      h.el("span", {cls: "claim", "data-testid": "queue-claim"}),
    ];
    return h.el("li", {cls: "queue-item", id: "review-" + r.id, "data-review-id": r.id, "data-task-id": r.task_id,
                       "aria-selected": "false"}, [
      h.el("div", {cls: "row head"}, head),
      r.prompt ? h.el("p", {cls: "prompt", "data-testid": "queue-prompt", text: r.prompt}) : null,
      h.el("p", {cls: "who muted"}, who),
      r.deadline ? h.el("p", {cls: "deadline", "data-testid": "queue-deadline", text: h.deadline(r.deadline, r.on_deadline)}) : null,
      r.input !== undefined && r.input !== null ? h.el("p", {cls: "input"}, [h.el("span", {cls: "muted", text: "Input: "}),
        h.el("span", {"data-testid": "queue-input", text: h.shorten(r.input, 160)})]) : null,
      h.el("pre", {cls: "output", "data-testid": "queue-output", text: h.shorten(r.output, 300)}),
    ]);
  }

  // A claim counts until it ends (a tab that crashed never says it left).
  function holder(r) {
    var by = h.claimHolder(r);
    return by && (!r.claimed_until || h.time(r.claimed_until).getTime() > Date.now()) ? by : null;
  }
  function showClaim(li, r) {
    var by = holder(r), span = li.querySelector("[data-testid=queue-claim]");
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
    var r = state.rows.find(function (x) { return x.id === data.review_id; });
    if (!r) return;
    if (type === "review.claimed") {
      r.claimed_by = data.claimed_by;
      r.claimed_until = data.claimed_until;
    } else { r.claimed_by = null; r.claimed_until = null; }
    claims();
  }

  function select(index) {
    var items = document.querySelectorAll("#queue .queue-item");
    if (!items.length) { state.selected = null; return; }
    state.index = Math.max(0, Math.min(index, items.length - 1));
    items.forEach(function (li, i) {
      var on = i === state.index;
      li.classList.toggle("selected", on);
      li.setAttribute("aria-selected", on ? "true" : "false");
      if (on) { state.selected = li.dataset.reviewId; if (li.scrollIntoView) li.scrollIntoView({block: "nearest"}); }
    });
  }

  function render() {
    var list = $("queue");
    var mine = state.rows.filter(h.mayDecide);
    list.replaceChildren.apply(list, mine.map(row));
    claims();
    var hidden = state.rows.length - mine.length;
    $("empty").hidden = mine.length > 0 || state.rows.length < state.count;
    $("queue-hidden").hidden = !hidden;
    $("queue-hidden").textContent = !hidden ? "" : hidden + (hidden === 1 ? " more is" : " more are") +
      " not shown: you may read " + (hidden === 1 ? "it" : "them") + " but not decide " + (hidden === 1 ? "it" : "them") +
      " (assigned to others, or your own tasks).";
    $("queue-total").textContent = state.count ? state.count + " open" + (state.rows.length < state.count ? ", " + state.rows.length + " shown" : "") : "";
    var more = $("load-more");
    more.hidden = state.rows.length >= state.count;
    more.textContent = "Show " + Math.min(PAGE, state.count - state.rows.length) + " more";
    // The selection stays on its review; if that one left, on the row that took its place.
    var at = mine.findIndex(function (r) { return r.id === state.selected; });
    select(at >= 0 ? at : state.index);
  }

  async function load() {
    var problem = $("queue-error");
    var data;
    try { data = await fetchFirst(state.wanted); }
    catch (err) { problem.textContent = err.message; problem.hidden = false; return; }
    problem.hidden = true;
    state.rows = data.rows;
    state.count = data.count;
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

  function open(li) {
    if (!li) return;
    try { window.sessionStorage.setItem(QUEUE_KEY, li.dataset.taskId); } catch (e) { /* no queue mode */ }
    window.location.assign("/tasks/" + li.dataset.taskId);
  }
  function selectedRow() { return document.querySelectorAll("#queue .queue-item")[state.index]; }

  $("queue").addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.open");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    open(link.closest(".queue-item"));
  });
  $("load-more").onclick = more;
  $("help-open").onclick = h.help;
  h.keys({
    "j": function () {
      var count = document.querySelectorAll("#queue .queue-item").length;
      if (state.index >= count - 1 && state.rows.length < state.count) {
        more().then(function () { select(state.index + 1); });
      } else select(state.index + 1);
    },
    "k": function () { select(state.index - 1); },
    "Enter": function (e) {
      var tag = e.target && e.target.tagName;
      if (tag === "A" && e.target.closest(".queue-item")) return open(e.target.closest(".queue-item"));
      if (tag === "BUTTON" || tag === "A") return false;  // the browser presses or follows it
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
  reload();
})();
