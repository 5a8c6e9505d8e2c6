// Unsent review drafts (a comment, an edited output, the form's values), kept in localStorage per review id as
// the person types: a reload, a crash or another reviewer's decision does not lose them.
"use strict";
window.drafts = (function () {
  var PREFIX = "hitl.draft.";
  var KEEP_MS = 14 * 24 * 3600 * 1000;  // a draft nobody came back to for two weeks goes
  function storage() {
    try { return window.localStorage; } catch (e) { return null; }  // storage may be off
  }
  function load(reviewId) {
    var store = storage();
    if (!store || !reviewId) return null;
    try { return JSON.parse(store.getItem(PREFIX + reviewId) || "null"); } catch (e) { return null; }
  }
  // `draft`: {comment, edit, form} — the comment ("" if none), the edited output (null if the
  // output was not changed) and the form's values as typed ({} if none). Nothing to keep
  // removes the draft.
  function save(reviewId, draft) {
    var store = storage();
    if (!store || !reviewId) return;
    if (!draft.comment && draft.edit === null && !Object.keys(draft.form || {}).length) { store.removeItem(PREFIX + reviewId); return; }
    try {
      store.setItem(PREFIX + reviewId, JSON.stringify(Object.assign({saved_at: Date.now()}, draft)));
    } catch (e) { /* storage full: the text is still on the page */ }
  }
  function clear(reviewId) {
    var store = storage();
    if (store && reviewId) store.removeItem(PREFIX + reviewId);
  }
  function prune() {
    var store = storage();
    if (!store) return;
    for (var i = store.length - 1; i >= 0; i--) {
      var key = store.key(i);
      if (key && key.indexOf(PREFIX) === 0) {
        var draft = load(key.slice(PREFIX.length));
        if (!draft || !(Date.now() - draft.saved_at < KEEP_MS)) store.removeItem(key);
      }
    }
  }
  return {load: load, save: save, clear: clear, prune: prune};
})();
