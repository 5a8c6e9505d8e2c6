// Shared helpers for the pages: JSON requests, small DOM helpers, the live queue count.
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
  function when(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }
  // What a review's deadline will do, in words; "" if it has none. `at`: an ISO time or epoch seconds.
  function deadline(at, onDeadline) {
    if (at === null || at === undefined) return "";
    var time = new Date(typeof at === "number" ? at * 1000 : at).toLocaleTimeString();
    return onDeadline
      ? "Decided “" + onDeadline + "” automatically at " + time + " unless someone decides first"
      : "The task fails at " + time + " unless someone decides first";
  }
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
  async function refreshQueueCount() {
    var badge = document.getElementById("queue-count");
    if (!badge) return;
    try {
      var data = await api("GET", "/api/v1/reviews?status=open&limit=1");
      badge.textContent = data.count ? String(data.count) : "";
    } catch (e) { /* the count is a hint; the queue page shows errors */ }
  }
  var listeners = [];
  function onAnyEvent(fn) { listeners.push(fn); }
  function followAll() {
    var source = new EventSource("/api/v1/events");
    // On every (re)connection, pages reload their lists: nothing that changed meanwhile is missed.
    source.onopen = function () { refreshQueueCount(); listeners.forEach(function (fn) { fn("open", {}); }); };
    ["task.created", "task.running", "review.requested", "review.decided", "task.completed",
     "task.failed", "task.cancelled"].forEach(function (type) {
      source.addEventListener(type, function (ev) {
        var data = JSON.parse(ev.data);
        if (type.indexOf("review.") === 0 || type === "task.cancelled") refreshQueueCount();
        listeners.forEach(function (fn) { fn(type, data); });
      });
    });
    return source;
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (signingIn()) return;  // nobody is signed in yet
    refreshQueueCount(); followAll();
  });
  return {el: el, show: show, when: when, deadline: deadline, api: api, onAnyEvent: onAnyEvent,
          refreshQueueCount: refreshQueueCount};
})();
