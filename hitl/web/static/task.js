// The task page: built entirely from the task's event stream, so a reload replays the same
// history and a second tab shows the same thing. The review form works from the keyboard
// (a, r, e, Ctrl+Enter), keeps unsent drafts (drafts.js), draws the review's form, and, when
// the page was opened from the review queue, opens the next review once the person has
// decided. Whether the person may decide is the server's word (`may_decide`): otherwise the
// review is shown read-only. Deciding one claims it (renewed each minute while the page is in
// view, given up when the page goes): others see who is reviewing it, and may take it over.
// Every round stands beside the one before it, with what changed marked, and with every
// decision and vote (who, and how long ago); the flow is drawn with the task's node marked; a
// failure says where and why, and offers a retry to those the server says may (`may_retry`).
"use strict";
(function () {
  var h = window.hitl;
  var root = document.getElementById("task");
  var taskId = root.dataset.taskId;
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = {"task.completed": 1, "task.failed": 1, "task.cancelled": 1};
  var WORDS = {approve: "Approved", reject: "Rejected", edit: "Edited and approved"};
  var VERBS = {approve: "approved", reject: "rejected", edit: "edited and approved"};
  var CHOICES = {approve: "Approve", reject: "Reject with comment", edit: "Approve my edit"};
  var TO = {approve: "approve", reject: "reject", edit: "approve an edit"};
  var VOTED = {approve: "approved", reject: "rejected", edit: "approved an edit"};
  var UNFINISHED = {queued: 1, running: 1, waiting_for_review: 1};
  // Where the task is, by its status, for the line above the flow.
  var AT = {queued: "Resumes at", running: "Running", waiting_for_review: "Waiting for a review at",
            failed: "Failed at"};
  // Events after which the task's API answer says more: times, votes, a traceback, may_*.
  var ASK_AGAIN = {"review.requested": 1, "review.voted": 1, "review.decided": 1, "review.escalated": 1,
                   "task.completed": 1, "task.failed": 1, "task.cancelled": 1, "task.retried": 1};
  // What the review API may say of a round beyond its event (newer servers say more).
  var DETAILS = ["round", "content_hash", "dangerous", "comment_asked", "assignees", "form",
                 "may_decide", "flow", "input"];
  var RENEW_MS = 60 * 1000;  // a claim lasts 5 minutes; the page renews it every minute
  var QUEUE_KEY = "hitl.queue";  // sessionStorage: the task this tab opened from the queue
  var state = {status: null, rounds: [], open: null, source: null, finished: false,
               choice: null, sending: null, known: {}, kept: null, me: null,
               task: null, node: null, visited: {}, lastId: null, flow: null};

  function session(key, value) {
    try {
      if (value === undefined) return window.sessionStorage.getItem(key);
      window.sessionStorage.setItem(key, value);
    } catch (e) { return null; }
    return value;
  }
  var fromQueue = session(QUEUE_KEY) === taskId;

  function setStatus(status, node) {
    state.status = status;
    var badge = $("status");
    badge.textContent = status.replace(/_/g, " ");
    badge.className = "badge " + status;
    $("node").textContent = node ? "node: " + node : "";
    if (node) { state.node = node; state.visited[node] = true; }
    showActions();
    markFlow();
  }

  // Cancel and Retry show for those the server says may (`may_cancel`, `may_retry`).
  function showActions() {
    var task = state.task || {};
    $("actions").hidden = !(UNFINISHED[state.status] && task.may_cancel === true);
    $("retry-row").hidden = !(state.status === "failed" && task.may_retry === true);
  }

  // --- what the API says beyond the events: times, votes, a traceback, may_cancel/may_retry ---

  var asking = null, askAgain = false;
  // Ask for the task again; one request at a time, and one more if events came meanwhile.
  function refresh() {
    if (asking) { askAgain = true; return asking; }
    asking = h.api("GET", "/api/v1/tasks/" + taskId).then(learn, function () { /* the next event asks again */ })
      .then(function () {
        asking = null;
        if (askAgain) { askAgain = false; refresh(); }
      });
    return asking;
  }
  function learn(task) {
    state.task = task;
    (task.reviews || []).forEach(function (r) { state.known[r.id] = r; });
    var meta = $("meta");
    meta.replaceChildren("submitted " + (task.created_by ? "by " + task.created_by + " " : ""), h.timeAgo(task.created_at));
    showActions();
    showTrace();
    if (state.open) describe(state.open);
    renderRounds();
  }

  // --- a failure: where, why, the traceback (admins: the server sends it to them only) -------

  function showFailure(error, node) {
    $("failure").hidden = false;
    $("failure-node").textContent = node ? " in node " + node : "";
    $("failure-error").textContent = error || "";
    $("retry-error").textContent = "";
    showTrace();
  }
  function showTrace() {
    var task = state.task;
    var trace = task && task.status === "failed" && state.status === "failed" ? task.traceback : null;
    $("failure-trace").hidden = !trace;
    $("failure-trace-text").textContent = trace || "";
  }

  // --- the flow, drawn, with the task's node marked ------------------------------------------

  function drawFlow(name) {
    $("flow-name").textContent = name;
    h.api("GET", "/api/v1/flows/" + encodeURIComponent(name)).then(function (graph) {
      state.flow = window.flowGraph.draw($("flow-graph"), graph);
      markFlow();
    }, function (err) {
      $("flow-now").textContent = err.status === 404
        ? "This server no longer runs the flow “" + name + "”, so it cannot be drawn." : err.message;
    });
  }
  function markFlow() {
    var here = state.node && AT[state.status] ? state.node : null;
    if (state.flow) state.flow.mark(here, state.status, state.visited);
    if (!state.flow) return;
    $("flow-now").textContent = here ? AT[state.status] + ": " + here.split("/").join(" › ")
      : state.status === "completed" ? "Completed." : state.status === "cancelled" ? "Cancelled." : "";
  }

  function timeline(type, data) {
    var text = data.text ? type + " · " + data.text : type;
    if (data.node && !data.text) text += " · " + data.node;
    if (data.action && type === "node.finished") text += " → " + data.action;
    if (type === "review.requested") text += " · round " + data.round;
    if (type === "review.decided") text += " · " + data.decision + (data.comment ? ": “" + data.comment + "”" : "") + (data.decided_by ? " by " + data.decided_by : "") + (data.on_behalf_of ? " for " + data.on_behalf_of : "");
    if (type === "task.failed") text += " · " + data.error;
    if (type === "task.cancelled" && data.reason) text += " · “" + data.reason + "”";
    if (type === "review.voted") text += " · " + data.voter + " " + (VOTED[data.decision] || data.decision) + " (" + data.approvals + " of " + data.quorum + " approvals)";
    if (type === "review.escalated") text += " · to " + (data.assignees || []).join(", ");
    $("timeline").appendChild(h.el("li", {cls: "ev " + type.replace(".", "-"), text: text}));
  }

  function text(value) { return document.createTextNode(value); }

  // Two texts side by side (one above the other on a narrow screen): `before` with what went
  // marked, `after` with what came; `attrs` for the `after` text.
  function sideBySide(before, after, labels, attrs, testid) {
    var ops = window.wordDiff(before, after);
    var changed = ops.some(function (op) { return op[0] !== "="; });
    var left = window.renderDiff(ops.filter(function (op) { return op[0] !== "+"; }));
    var right = window.renderDiff(ops.filter(function (op) { return op[0] !== "-"; }));
    right.className += " " + attrs.cls;
    if (attrs.testid) right.setAttribute("data-testid", attrs.testid);
    return h.el("div", {cls: "sides", "data-testid": testid}, [
      h.el("figure", {cls: "side before"}, [h.el("figcaption", {text: labels[0]}), left]),
      h.el("figure", {cls: "side after"}, [h.el("figcaption", {text: labels[1] + (changed ? "" : " · unchanged")}), right]),
    ]);
  }

  // Who decided a round and when; or why nobody did.
  function verdict(r, known) {
    var p, when = null;
    if (r.decision) {
      var words = (WORDS[r.decision] || r.decision) + (r.decided_by ? " by " + r.decided_by : "") +
        (r.on_behalf_of ? " for " + r.on_behalf_of : "");
      p = h.el("p", {cls: "decision " + r.decision, "data-testid": "round-decision"}, [
        h.el("strong", {text: words}),
        r.comment ? h.el("span", {cls: "comment", text: " — “" + r.comment + "”"}) : null,
      ]);
      if (known.decided_at) when = h.el("span", {cls: "when"}, [text("· "), h.timeAgo(known.decided_at, {"data-testid": "round-decided-at"})]);
    } else if (r.cancelled) {
      p = h.el("p", {cls: "decision muted", text: "cancelled"});
    } else if (r.expired) {
      p = h.el("p", {cls: "decision muted", text: "no decision by its deadline"});
    } else {
      p = h.el("p", {cls: "decision muted", text: "waiting for a decision"});
    }
    return h.el("div", {cls: "verdict"}, [p, when]);
  }

  // A review that several people decide: each vote, who cast it and when.
  function voteList(known) {
    var quorum = known.quorum || 1;
    if (quorum < 2 || !known.votes) return null;
    var approvals = known.votes.filter(function (v) { return v.decision !== "reject"; }).length;
    var items = known.votes.map(function (v) {
      return h.el("li", {cls: "vote " + v.decision, "data-testid": "vote", "data-voter": v.voter}, [
        h.el("strong", {text: v.voter + " " + (VOTED[v.decision] || v.decision)}), text(" · "), h.timeAgo(v.at),
        v.comment ? h.el("span", {cls: "comment", text: " — “" + v.comment + "”"}) : null,
      ]);
    });
    var sum = "Votes: " + quorum + " approvals from different people decide it" +
      (known.status === "open" ? "; " + approvals + " so far" : "");
    return h.el("div", {cls: "votes", "data-testid": "round-votes"}, [
      h.el("p", {cls: "muted", text: sum}),
      items.length ? h.el("ul", {}, items) : null,
    ]);
  }

  function renderRounds() {
    var list = $("rounds");
    list.replaceChildren.apply(list, state.rounds.map(function (r, i) {
      var known = state.known[r.review_id] || {};
      var parts = [h.el("div", {cls: "round-head"}, [
        h.el("h3", {text: "Round " + r.round}),
        known.created_at ? h.el("span", {cls: "muted"}, [text("asked "), h.timeAgo(known.created_at)]) : null,
      ])];
      if (i > 0) {
        var prev = state.rounds[i - 1];
        parts.push(sideBySide(h.show(prev.output), h.show(r.output), ["Round " + prev.round, "Round " + r.round],
                              {cls: "output", testid: "round-output"}, "round-diff"));
      } else {
        parts.push(h.el("pre", {cls: "output", "data-testid": "round-output", text: h.show(r.output)}));
      }
      parts.push(verdict(r, known));
      if (r.decision === "edit") {
        parts.push(sideBySide(h.show(r.output), h.show(r.edited_output),
                              ["As shown", "As " + (r.decided_by || "the reviewer") + " edited it"],
                              {cls: "output edited"}, "round-edit"));
      }
      parts.push(voteList(known));
      return h.el("li", {cls: "round", "data-testid": "round", "data-round": String(r.round)}, parts);
    }));
  }

  // --- the review form ---------------------------------------------------------------------

  function allows(decision) { return !!state.open && state.open.decisions.indexOf(decision) >= 0; }
  function original() { return state.open ? h.show(state.open.output) : ""; }
  function edited() { return !!state.open && $("edit").value !== original(); }
  // The decisions that need a comment, as the review API says (`comment_asked`: those the
  // review names, and a rejection); unknown until the round's details arrive.
  function commentRequired(round) { return round.comment_asked || []; }
  function needsComment(round, decision) { return commentRequired(round).indexOf(decision) >= 0; }

  // What the review API says of a round (once): its round and content hash to send back, the
  // decisions that need a comment or a confirmation.
  function details(round) {
    if (!round.details) {
      var known = state.known[round.review_id];
      round.details = (known ? Promise.resolve(known) : h.api("GET", "/api/v1/reviews/" + round.review_id))
        .then(function (info) {
          DETAILS.forEach(function (k) { if (info[k] !== undefined && info[k] !== null) round[k] = info[k]; });
          return round;
        }, function () { round.details = null; return round; })  // asked again at the next decision
        .then(function () {
          round.detailed = true;
          if (state.open === round) {
            drawFields(round);
            describe(round);
            if (round.may_decide !== false && !myVote(round)) claim(round, false);
          }
          return round;
        });
    }
    return round.details;
  }

  // --- claims: who is reviewing this now -----------------------------------------------------

  function myName() { return state.me || h.me().name; }
  function epoch(at) { return at === null || at === undefined ? 0 : h.time(at).getTime() / 1000; }
  // round.claim: {state: "pending" | "mine" | "other" | "none", holder, until (epoch s), taken}.
  function claimState(round) { return (round && round.claim) || {state: "none"}; }
  function blocked(round) { return claimState(round).state === "other"; }

  // Claim the review (again: renew it); `takeOver`: even from someone else.
  function claim(round, takeOver) {
    var before = claimState(round);
    if (before.state === "pending") return round.claiming;
    round.claim = {state: "pending", holder: before.holder, until: before.until, taken: before.taken};
    var url = "/api/v1/reviews/" + round.review_id + "/claim";
    round.claiming = h.api("POST", url, {take_over: !!takeOver}).then(function (review) {
      state.me = review.claimed_by || state.me;
      round.claim = {state: "mine", holder: review.claimed_by, until: epoch(review.claimed_until)};
    }, function (err) {
      var by = err.body && err.body.claimed_by;
      if (err.status === 409 && by) {
        // Someone else has it; if it was ours a moment ago, they took it over.
        round.claim = {state: "other", holder: by, until: 0,
                       taken: before.state === "mine" || (before.taken && before.holder === by)};
      } else if (err.status === 403) {
        round.may_decide = false;  // the server's word: read only
        round.claim = {state: "none"};
      } else {
        round.claim = {state: "none"};  // decided meanwhile, or no claims here: the server still checks
      }
    }).then(function () { if (state.open === round) describe(round); });
    return round.claiming;
  }

  // Every minute, while the page is in view: renew our claim, or claim a review whose holder's
  // claim ran out (a closed tab that never said so).
  function renew() {
    var round = state.open;
    if (!round || !round.detailed || round.may_decide === false || myVote(round) || state.sending) return;
    if (document.visibilityState !== "visible") return;
    var c = claimState(round);
    if (c.state === "pending") return;
    if (c.state === "other" && c.until && c.until * 1000 > Date.now()) return;
    claim(round, false);
  }
  setInterval(renew, RENEW_MS);
  document.addEventListener("visibilitychange", function () {
    var c = claimState(state.open);
    if (document.visibilityState === "visible" && c.state !== "other") renew();
  });
  // Leaving the page gives the claim up (keepalive: the request outlives the page).
  window.addEventListener("pagehide", function () {
    var round = state.open;
    if (!round || claimState(round).state !== "mine") return;
    try {
      fetch("/api/v1/reviews/" + round.review_id + "/claim", {method: "DELETE", keepalive: true});
    } catch (e) { /* the claim ends by itself in 5 minutes */ }
  });

  // A `review.claimed` event. The stream replays history first: a claim older than ours
  // (claims last equally long, so it ends sooner) or already over is history, not news.
  function claimedEvent(data) {
    var round = state.open;
    if (!round || round.review_id !== data.review_id || round.may_decide === false) return;
    var until = epoch(data.claimed_until), c = claimState(round);
    if (until * 1000 <= Date.now() || data.claimed_by === myName()) return;
    if (c.state === "pending") return;  // the claim under way says who has it
    if (c.state === "mine" && until <= c.until) return;
    var takenFromMe = c.state === "mine" && data.taken_from === myName();
    round.claim = {state: "other", holder: data.claimed_by, until: until,
                   taken: takenFromMe || (!!c.taken && c.holder === data.claimed_by)};
    if (takenFromMe) {
      timeline("review.claimed", {text: data.claimed_by + " took over this review from " + data.taken_from});
      saveDraft();
    }
    describe(round);
  }
  // A `review.released` event: the holder gave the review up, so try to claim it.
  function releasedEvent(data) {
    var round = state.open;
    if (!round || round.review_id !== data.review_id || round.may_decide === false) return;
    if (claimState(round).state === "other") claim(round, false);
  }

  // This person's vote on a review that several people decide, if they cast one.
  function myVote(round) {
    var votes = (state.known[round.review_id] || {}).votes || [];
    return votes.filter(function (v) { return v.voter === myName(); })[0] || null;
  }
  function votedWhy(round, vote) {
    var known = state.known[round.review_id] || {}, quorum = known.quorum || 1;
    var approvals = (known.votes || []).filter(function (v) { return v.decision !== "reject"; }).length;
    return [text("You " + (VOTED[vote.decision] || vote.decision) + " "), h.timeAgo(vote.at),
            text(". It takes " + quorum + " approvals from different people; it has " + approvals +
                 ". The others' votes show here as they come.")];
  }

  // Why the person may read this review but not decide it, in plain words.
  function readOnlyWhy(round) {
    return round.assignees && round.assignees.length
      ? "Read only: this review is assigned to " + round.assignees.join(", ") + ". You may read it but not decide it."
      : "Read only: you may read this review but not decide it.";
  }

  // The parts that depend on what the review asks, whether the person may decide it, and who
  // else is reviewing it.
  function describe(round) {
    var vote = myVote(round), readOnly = round.may_decide === false || !!vote, c = claimState(round);
    $("review-title").textContent = readOnly ? "Review" : "Your review";
    $("review-readonly").hidden = !readOnly || !!vote;
    $("review-readonly").textContent = readOnly && !vote ? readOnlyWhy(round) : "";
    $("review-voted").hidden = !vote;
    $("review-voted").replaceChildren.apply($("review-voted"), vote ? votedWhy(round, vote) : []);
    $("review-controls").hidden = readOnly || !round.detailed;
    $("edit").readOnly = readOnly;
    $("edit-label").textContent = readOnly ? "Output" : "Output (edit it to approve a corrected version)";
    $("edit-key").hidden = readOnly;
    var other = !readOnly && c.state === "other";
    $("review-claim").hidden = !other;
    $("review-claim").classList.toggle("taken", other && !!c.taken);
    $("review-claim-text").textContent = !other ? ""
      : c.taken ? c.holder + " took over this review. Your draft is kept; take it back to decide it yourself."
      : "Being reviewed by " + c.holder + ": a decision of yours is refused while they have it. Take it over to decide it yourself.";
    $("take-over").textContent = c.taken ? "Take it back…" : "Take over…";
    updateEdit();
    var needs = commentRequired(round);
    $("comment-label").textContent = !round.comment_asked ? "Comment"
      : needs.length === 1 && needs[0] === "reject"
      ? "Comment (required to reject: tell the next revision what to change)"
      : needs.length ? "Comment (required to " + needs.map(function (d) { return TO[d]; }).join(" or ") + ")"
      : "Comment (optional)";
  }

  function choose(decision) {
    state.choice = decision;
    ["approve", "approve-edited", "reject"].forEach(function (id) { $(id).classList.remove("chosen"); });
    var button = decision === "edit" ? "approve-edited" : decision;
    if (decision) $(button).classList.add("chosen");
    $("choice").textContent = decision ? "Ctrl+Enter sends: " + CHOICES[decision] : "";
    showFields(decision);
  }

  // --- the review's form ---------------------------------------------------------------------

  function forDecision(field, decision) {
    var only = field.decisions || [];
    return !decision || !only.length || only.indexOf(decision) >= 0;
  }
  function fieldInput(f, value) {
    var id = "field-" + f.name, attrs = {id: id, name: f.name, "data-testid": id};
    if (f.required) attrs["aria-required"] = "true";
    var input;
    if (f.type === "boolean") {
      input = h.el("input", Object.assign(attrs, {type: "checkbox"}));
      input.checked = value === true;
    } else if (f.type === "choice") {
      var options = [h.el("option", {value: "", text: f.required ? "— choose —" : "—"})];
      (f.choices || []).forEach(function (c) { options.push(h.el("option", {value: String(c), text: String(c)})); });
      input = h.el("select", attrs, options);
      input.value = typeof value === "string" ? value : "";
    } else if (f.type === "number" || f.type === "integer") {
      Object.assign(attrs, {type: "number", step: f.type === "integer" ? "1" : "any",
                            inputmode: f.type === "integer" ? "numeric" : "decimal"});
      if (f.min !== null && f.min !== undefined) attrs.min = String(f.min);
      if (f.max !== null && f.max !== undefined) attrs.max = String(f.max);
      input = h.el("input", attrs);
      input.value = typeof value === "string" ? value : "";
    } else {
      attrs.type = "text";
      if (f.max_length) attrs.maxlength = String(f.max_length);
      input = h.el("input", attrs);
      input.value = typeof value === "string" ? value : "";
    }
    return input;
  }
  // What a field takes, in words: "1 to 5", "whole number", "at most 20 characters".
  function fieldHint(f) {
    var parts = [];
    if (f.type === "integer") parts.push("a whole number");
    if (f.type === "number") parts.push("a number");
    var has = function (x) { return x !== null && x !== undefined; };
    if (has(f.min) && has(f.max)) parts.push("from " + f.min + " to " + f.max);
    else if (has(f.min)) parts.push("at least " + f.min);
    else if (has(f.max)) parts.push("at most " + f.max);
    if (f.max_length) parts.push("at most " + f.max_length + " characters");
    return parts.join(", ");
  }
  // Draw the review's form (once per round; a draft's values come back).
  function drawFields(round) {
    var form = round.form || [], box = $("fields");
    var sig = round.review_id + JSON.stringify(form);
    if (box.dataset.drawn === sig) return;
    box.dataset.drawn = sig;
    var draft = window.drafts.load(round.review_id), values = (draft && draft.form) || {};
    box.replaceChildren.apply(box, form.map(function (f) {
      var input = fieldInput(f, values[f.name]), label = f.label || f.name;
      var only = (f.decisions || []).length ? "for " + f.decisions.map(function (d) { return CHOICES[d] || d; }).join(" or ") : "";
      var marks = [
        f.required ? h.el("span", {cls: "req", text: "required"}) : null,
        only ? h.el("span", {cls: "muted", text: only}) : null,
      ];
      var hint = fieldHint(f);
      var head = f.type === "boolean"
        ? h.el("label", {"for": input.id, cls: "check"}, [input, h.el("span", {text: label})].concat(marks))
        : h.el("label", {"for": input.id}, [h.el("span", {text: label})].concat(marks));
      input.addEventListener("input", function () { input.removeAttribute("aria-invalid"); saveDraft(); });
      input.addEventListener("change", saveDraft);
      return h.el("div", {cls: "field", "data-field": f.name}, [
        head, f.type === "boolean" ? null : input,
        hint ? h.el("p", {cls: "muted hint", text: hint}) : null,
      ]);
    }));
    $("form-error").textContent = "";
    showFields(state.choice);
  }
  // Only the fields of the chosen decision (all of them, each saying which it is for, until one
  // is chosen).
  function showFields(decision) {
    var round = state.open, shown = 0;
    var form = (round && round.form) || [];
    form.forEach(function (f) {
      var node = document.querySelector('#fields [data-field="' + CSS.escape(f.name) + '"]');
      if (!node) return;
      node.hidden = !forDecision(f, decision);
      if (!node.hidden) shown++;
    });
    $("review-fields").hidden = !shown;
    $("fields-legend").textContent = decision ? "To " + TO[decision] : "Form";
  }
  // The fields' values as typed (for the draft): text as text, a box as true or false.
  function typedValues(round) {
    var out = {};
    ((round && round.form) || []).forEach(function (f) {
      var input = $("field-" + f.name);
      if (!input) return;
      if (f.type === "boolean") { if (input.checked) out[f.name] = true; }
      else if (input.value !== "") out[f.name] = input.value;
    });
    return out;
  }
  // The values a decision sends: its fields only, numbers as numbers, empty ones left out.
  function formValues(round, decision) {
    var out = {};
    (round.form || []).forEach(function (f) {
      var input = $("field-" + f.name);
      if (!input || !forDecision(f, decision)) return;
      if (f.type === "boolean") { out[f.name] = input.checked; return; }
      var text = input.value.trim();
      if (text === "") return;  // required: the server says so, naming the field
      if (f.type === "number" || f.type === "integer") {
        var n = Number(text);
        out[f.name] = isFinite(n) ? n : text;
      } else out[f.name] = f.type === "text" ? input.value : text;
    });
    return out;
  }
  // The server's word on a value (422: "form.score: must be at most 5"), by the form.
  function formProblem(round, message) {
    $("form-error").textContent = message;
    var named = /(?:^|\W)form\.([^:\s]+)/.exec(message);
    var input = named && $("field-" + named[1]);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  // The edit trap: once the output differs from what was shown, "Approve" (which would send
  // the original) is off and "Approve my edit" is the only approve; the diff shows the edit.
  function updateEdit() {
    var changed = edited(), stop = !!state.sending || blocked(state.open);
    $("approve").disabled = changed || stop;
    $("approve-edited").disabled = stop;
    $("reject").disabled = stop;
    $("approve").title = changed ? "You changed the output: use “Approve my edit”, or put the text back" : "";
    $("approve-edited").hidden = !changed || !allows("edit");
    $("edit-hint").hidden = !changed;
    $("edit-hint").textContent = allows("edit")
      ? "You changed the output, so “Approve” is off: it would drop your edit. “Approve my edit” sends your version; put the text back to approve the original."
      : "This review does not take edits: put the output back to approve it.";
    var box = $("edit-diff");
    box.hidden = !changed;
    box.replaceChildren();
    if (changed) {
      box.appendChild(h.el("p", {cls: "muted", text: "Your edit, against the output you were shown:"}));
      box.appendChild(window.renderDiff(window.wordDiff(original(), $("edit").value)));
    }
    if (state.choice === "approve" && changed) choose(allows("edit") ? "edit" : null);
  }

  function saveDraft() {
    var round = state.open;
    if (!round) return;
    if (round.may_decide === false) return;
    var comment = $("comment").value;
    window.drafts.save(round.review_id, {comment: comment.trim() ? comment : "",
                                         edit: edited() ? $("edit").value : null,
                                         form: typedValues(round),
                                         round: round.round, task: taskId});
  }

  function showReview(round) {
    state.open = round;
    var box = $("review");
    choose(null);
    if (!round) { box.hidden = true; return; }
    $("review-round").textContent = round.round;
    $("review-prompt").textContent = round.prompt || "";
    var deadline = $("review-deadline");
    deadline.replaceChildren(h.deadline(round.deadline, round.on_deadline));
    if (round.deadline) {
      deadline.append(" · ", h.el("span", {cls: "countdown", "data-testid": "review-countdown",
                                           "data-until": String(round.deadline), text: h.left(round.deadline)}));
    }
    deadline.hidden = !round.deadline;
    var changes = $("review-changes"), index = state.rounds.indexOf(round);
    changes.replaceChildren();
    changes.hidden = index < 1;
    if (index >= 1) {
      var prev = state.rounds[index - 1];
      changes.appendChild(h.el("p", {cls: "muted", text: "What changed since round " + prev.round +
        (prev.comment ? " (you asked: “" + prev.comment + "”)" : "") + ":"}));
      changes.appendChild(window.renderDiff(window.wordDiff(h.show(prev.output), h.show(round.output))));
    }
    var draft = window.drafts.load(round.review_id);
    $("edit").value = draft && typeof draft.edit === "string" ? draft.edit : h.show(round.output);
    $("comment").value = draft && draft.comment ? draft.comment : "";
    $("draft-restored").hidden = !draft;
    $("draft-restored").textContent = draft ? "Your unsent draft from " + new Date(draft.saved_at).toLocaleString() + " is back." : "";
    $("review-error").textContent = "";
    $("form-error").textContent = "";
    $("review-stale").hidden = true;
    drawFields(round);
    $("approve").hidden = round.decisions.indexOf("approve") < 0;
    $("reject").hidden = round.decisions.indexOf("reject") < 0;
    describe(round);
    updateEdit();
    box.hidden = false;
    details(round);
  }

  // The round's draft was not sent and now cannot be: say why, and keep the text on show.
  function keepDraft(round, why) {
    var draft = window.drafts.load(round.review_id);
    if (!draft) return;
    state.kept = round.review_id;
    $("kept-why").textContent = why + " Your unsent draft for round " + round.round + " is kept below: copy what you need.";
    var text = $("kept-text");
    text.replaceChildren();
    if (draft.comment) text.appendChild(h.el("div", {}, [h.el("h3", {text: "Your comment"}), h.el("pre", {"data-testid": "kept-comment", text: draft.comment})]));
    if (typeof draft.edit === "string") text.appendChild(h.el("div", {}, [h.el("h3", {text: "Your edit"}), h.el("pre", {"data-testid": "kept-edit", text: draft.edit})]));
    var form = draft.form || {};
    if (Object.keys(form).length) {
      text.appendChild(h.el("div", {}, [h.el("h3", {text: "Your form"}), h.el("pre", {"data-testid": "kept-form",
        text: Object.keys(form).map(function (k) { return k + ": " + form[k]; }).join("\n")})]));
    }
    $("kept").hidden = false;
  }

  function decidedBy(data) {
    if (data.decided_by === "deadline") return "The deadline " + (VERBS[data.decision] || data.decision) + " this review.";
    var who = data.decided_by || "Someone";
    return who + (data.on_behalf_of ? " (for " + data.on_behalf_of + ")" : "") + " " +
      (VERBS[data.decision] || data.decision) + " this review before you sent yours.";
  }

  function apply(type, data) {
    if (type === "review.claimed") return claimedEvent(data);
    if (type === "review.released") return releasedEvent(data);
    timeline(type, data);
    if (type === "task.created") { $("input").textContent = h.show(data.input); setStatus("queued"); }
    else if (type === "task.retried") {
      setStatus("queued");
      $("result-card").hidden = true;  // the failure is history now
      $("failure").hidden = true;
    }
    else if (type === "task.running" || type === "node.started") setStatus("running", data.node);
    else if (type === "review.requested") {
      var round = {round: data.round, review_id: data.review_id, output: data.output,
                   decisions: data.decisions || [], prompt: data.prompt,
                   deadline: data.deadline, on_deadline: data.on_deadline};
      DETAILS.forEach(function (k) { if (data[k] !== undefined && data[k] !== null && round[k] === undefined) round[k] = data[k]; });
      state.rounds.push(round);
      setStatus("waiting_for_review", data.node);
      showReview(round);
    } else if (type === "review.decided") {
      state.rounds.forEach(function (r) {
        if (r.review_id === data.review_id) {
          r.decision = data.decision; r.comment = data.comment; r.decided_by = data.decided_by; r.on_behalf_of = data.on_behalf_of;
          r.edited_output = data.edited_output;
          if (state.sending !== r.review_id) keepDraft(r, decidedBy(data));
        }
      });
      if (state.open && state.open.review_id === data.review_id) showReview(null);
      setStatus("running", "");
    } else if (type === "task.completed") {
      setStatus("completed");
      $("result").textContent = h.show(data.result);
      $("result-card").hidden = false;
    } else if (type === "task.failed") {
      setStatus("failed", data.node);
      state.rounds.forEach(function (r) {
        if (r.review_id === data.review_id && !r.decision) {
          r.expired = true;
          keepDraft(r, "The task failed (" + data.error + ") before you sent your decision.");
        }
      });
      if (state.open && state.open.review_id === data.review_id) showReview(null);
      showFailure(data.error, data.node || state.node);
    } else if (type === "task.cancelled") {
      setStatus("cancelled");
      state.rounds.forEach(function (r) {
        if (!r.decision && !r.cancelled && !r.expired) {
          r.cancelled = true;
          keepDraft(r, "The task was cancelled" + (data.by ? " by " + data.by : "") + " before you sent your decision.");
        }
      });
      showReview(null);
    }
    renderRounds();
    if (ASK_AGAIN[type]) refresh();
  }

  // --- deciding ----------------------------------------------------------------------------

  function refuse(message, focus) {
    $("review-error").textContent = message;
    if (focus) $(focus).focus();
  }

  function body(round, decision) {
    var comment = $("comment").value.trim();
    var sent = {decision: decision, comment: comment || null};
    if (decision === "edit") {
      var text = $("edit").value;
      if (typeof round.output === "string") sent.edited_output = text;
      else sent.edited_output = JSON.parse(text);  // SyntaxError: said by the caller
    }
    if (round.form && round.form.length) sent.form = formValues(round, decision);
    // Newer servers refuse a decision made on another round or other content (409).
    if (round.round !== undefined && round.content_hash) {
      sent.round = round.round;
      sent.content_hash = round.content_hash;
    }
    return sent;
  }

  async function decide(decision) {
    var round = state.open;
    if (!round || state.sending) return;
    await details(round);
    if (round.claiming) await round.claiming;
    if (state.open !== round || round.may_decide === false) return;
    if (blocked(round)) {
      return refuse(claimState(round).holder + " is reviewing this: take it over first to decide it.");
    }
    if (decision === "approve" && edited()) {
      return refuse("You changed the output: “Approve” would drop your edit. Approve your edit (a), or put the text back.", "edit");
    }
    if (decision === "edit" && !edited()) {
      return refuse("Change the output first, or approve it as it is (a).", "edit");
    }
    if (state.choice !== decision) choose(decision);  // its form fields show
    if (!round.comment_asked) {  // what needs a comment is the server's to say: not sent blind
      return refuse("This review's details did not load, so nothing was sent: try again in a moment.");
    }
    if (needsComment(round, decision) && !$("comment").value.trim()) {
      return refuse(decision === "reject" ? "Write a comment so the next revision knows what to change."
        : "This review needs a comment to " + TO[decision] + ": say why.", "comment");
    }
    var sent;
    try { sent = body(round, decision); }
    catch (e) { return refuse("The edited output must stay valid JSON: " + e.message, "edit"); }
    if ((round.dangerous || []).indexOf(decision) >= 0) {
      var sure = await h.ask({
        title: "Really " + TO[decision] + "?",
        text: "This review asks you to confirm before you " + TO[decision] + ": a decision cannot be undone.",
        confirm: "Yes, " + TO[decision], back: "Go back", danger: true,
      });
      if (!sure || state.open !== round) return;
    }
    var buttons = document.querySelectorAll("#review button");
    state.sending = round.review_id;
    buttons.forEach(function (b) { b.disabled = true; });
    $("form-error").textContent = "";
    try {
      var review = await h.api("POST", "/api/v1/reviews/" + round.review_id + "/decision", sent);
      round.claim = {state: "none"};  // decided: nothing to renew, nothing to give up
      window.drafts.clear(round.review_id);
      $("review-error").textContent = "";
      if (review && review.status === "open") {
        // A vote, of several the review needs: it stays open, and its claim goes, for the others.
        state.known[review.id] = review;
        renderRounds();
        h.api("DELETE", "/api/v1/reviews/" + review.id + "/claim").catch(function () { /* it runs out */ });
      }
      if (fromQueue) openNext(round.review_id);
    } catch (err) {
      var form = err.status === 422 && round.form && round.form.length && /(^|\W)form\b/.test(err.message);
      if (form) formProblem(round, err.message);  // by the form; what was typed stays
      else $("review-error").textContent = err.message;
      if (err.status === 409 && err.body && err.body.claimed_by && state.open === round) {
        // Someone else claimed it meanwhile: say who, and offer to take it over.
        $("review-error").textContent = "";
        round.claim = {state: "other", holder: err.body.claimed_by, until: 0};
        describe(round);
      } else if (err.status === 409) {
        // Someone else decided, or a newer round came: the draft stays, and a reload shows why.
        $("review-stale").hidden = false;
        if (state.open !== round) keepDraft(round, err.message + ".");
      }
    } finally {
      state.sending = null;
      buttons.forEach(function (b) { b.disabled = false; });
      updateEdit();
      if (state.open === round) describe(round);
    }
  }

  // The next open review this person may decide (oldest first), or "queue empty".
  async function openNext(decided) {
    var PAGE = 100, offset = 0, next = null;
    try {
      for (;;) {
        var data = await h.api("GET", "/api/v1/reviews?status=open&limit=" + PAGE + "&offset=" + offset);
        next = data.data.find(function (r) {
          var holder = h.claimHolder(r);
          return r.id !== decided && h.mayDecide(r) && (!holder || holder === myName());
        });
        offset += data.data.length;
        if (next || !data.data.length || offset >= data.count) break;
      }
    } catch (err) { next = null; }
    if (next) {
      session(QUEUE_KEY, next.task_id);
      window.location.assign("/tasks/" + next.task_id);
    } else {
      $("queue-done").hidden = false;
      $("queue-link").focus();
    }
  }

  // --- controls and keys -------------------------------------------------------------------

  $("approve").onclick = function () { decide("approve"); };
  $("approve-edited").onclick = function () { decide("edit"); };
  $("reject").onclick = function () { decide("reject"); };
  $("edit").addEventListener("input", function () { updateEdit(); saveDraft(); });
  $("comment").addEventListener("input", saveDraft);
  $("reload").onclick = function () { window.location.reload(); };
  $("take-over").onclick = async function () {
    var round = state.open, c = claimState(round);
    if (!round || c.state !== "other") return;
    var answer = await h.ask({
      title: c.taken ? "Take this review back?" : "Take over this review?",
      text: c.holder + " is reviewing it now. Taking it over lets you decide it; " + c.holder +
        "'s page will say that you took over, and their draft stays with them.",
      confirm: c.taken ? "Take it back" : "Take over", back: "Leave it to " + c.holder,
    });
    if (!answer || state.open !== round) return;
    await claim(round, true);
    if (claimState(round).state === "mine") $("comment").focus();
  };
  $("kept-discard").onclick = function () {
    window.drafts.clear(state.kept);
    $("kept").hidden = true;
  };
  $("help-open").onclick = h.help;
  $("retry").onclick = async function () {
    var button = $("retry");
    button.disabled = true;
    $("retry-error").textContent = "";
    try {
      await h.api("POST", "/api/v1/tasks/" + taskId + "/retry");
      follow();
    } catch (err) {
      $("retry-error").textContent = err.message;
    } finally {
      button.disabled = false;
    }
  };
  $("cancel").onclick = async function () {
    var answer = await h.ask({
      title: "Cancel this task?",
      text: "The task stops for good and its open review is cancelled; a cancelled task is not retried.",
      reason: {label: "Why cancel it?", placeholder: "Submitted by mistake, no longer needed…"},
      confirm: "Cancel the task", back: "Keep the task", danger: true,
    });
    if (!answer) return;
    try { await h.api("POST", "/api/v1/tasks/" + taskId + "/cancel", {reason: answer.reason}); }
    catch (err) { $("live").textContent = err.message; }
  };

  function reviewing() {
    return !!state.open && !$("review").hidden && !$("review-controls").hidden;
  }
  h.keys({
    "a": function () {
      if (!reviewing()) return false;
      choose(edited() && allows("edit") ? "edit" : "approve");
      if (state.choice === "approve" && !allows("approve")) choose(null);
    },
    "r": function () {
      if (!reviewing() || !allows("reject")) return false;
      choose("reject");
      $("comment").focus();
    },
    "e": function () {
      if (!reviewing() || !allows("edit")) return false;
      choose("edit");
      $("edit").focus();
    },
    "ctrl+Enter": function () {
      if (!reviewing()) return false;
      if (!state.choice) return refuse("Choose first: a approves, r rejects, e edits the output.");
      decide(state.choice);
    },
    "Escape": function (e) {
      if (!h.typing(e.target)) return false;
      e.target.blur();
    },
    "?": h.help,
  }, ["Escape"]);

  // --- the stream --------------------------------------------------------------------------

  var TYPES = ["task.created", "task.running", "node.started", "node.finished", "review.requested",
               "review.claimed", "review.released", "review.voted", "review.escalated", "review.decided",
               "task.completed", "task.failed", "task.cancelled", "task.retried", "node.progress"];
  // `after`: the last event this page has (a stream that ended is followed again from there).
  function connect(after) {
    var source = new EventSource("/api/v1/tasks/" + taskId + "/events" + (after ? "?after=" + after : ""));
    state.source = source;
    source.onopen = function () { $("live").textContent = "● live"; };
    // The server ends the stream after the task's final event. A final event in the replay
    // may be history (a failed task that was retried): the page is finished only when the
    // stream ends right after one.
    source.onerror = function () {
      if (state.finished) { source.close(); $("live").textContent = "finished"; }
      else if (source.readyState !== EventSource.CLOSED) $("live").textContent = "reconnecting…";
    };
    TYPES.forEach(function (type) {
      source.addEventListener(type, function (ev) {
        if (source !== state.source) return;  // a stream this page left
        if (ev.lastEventId) state.lastId = ev.lastEventId;
        state.finished = !!FINAL[type];
        var data = JSON.parse(ev.data);
        // Other parts of the page (progress.js) follow the task on this one stream: a page
        // holds one stream per task, not one per part (browsers allow 6 per host).
        document.dispatchEvent(new CustomEvent("hitl:task-event", {detail: {type: type, data: data}}));
        if (type !== "node.progress") apply(type, data);
      });
    });
  }

  // The server ends a task's stream after its failure: a retry from this page follows it again.
  function follow() {
    if (state.source) state.source.close();
    state.finished = false;
    connect(state.lastId);
  }

  window.drafts.prune();
  h.api("GET", "/api/v1/tasks/" + taskId).then(function (task) {
    learn(task);
    $("flow").textContent = task.flow ? "flow: " + task.flow : "";
    drawFlow(task.flow);
    connect();
  }, function (err) {
    setStatus("unknown");
    $("live").textContent = err.status === 404 ? "No such task." : err.message;
  });
})();
