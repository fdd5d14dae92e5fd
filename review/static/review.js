// korgwatch review: keyboard shortcuts and in-place decisions. Only an enhancement: every action is a
// plain POST form that works without this file. No inline script (the CSP forbids it), no libraries.
(function () {
  "use strict";
  var selected = -1;

  function items() { return Array.prototype.slice.call(document.querySelectorAll(".item")); }

  function select(index) {
    var all = items();
    if (!all.length) { selected = -1; return null; }
    index = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (el, i) { el.classList.toggle("selected", i === index); });
    selected = index;
    all[index].scrollIntoView({ block: "nearest" });
    return all[index];
  }

  function current() {
    var all = items();
    if (selected < 0 || selected >= all.length) { return select(0); }
    return all[selected];
  }

  var lastUndo = null;  // the reopen URL of this page's last in-place decision (the toast's undo, key u)

  function toast(text, bad, undoUrl) {
    var el = document.createElement("div");
    el.className = "toast" + (bad ? " bad" : "");
    el.setAttribute("role", "status");
    var words = document.createElement("span");
    words.textContent = text;  // text, never HTML
    el.appendChild(words);
    if (undoUrl) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "small undo";
      button.textContent = "Undo (u)";
      button.addEventListener("click", function () { undo(); });
      el.appendChild(document.createTextNode(" "));
      el.appendChild(button);
    }
    document.body.appendChild(el);
    setTimeout(function () { el.remove(); }, bad || undoUrl ? 8000 : 2500);
  }

  function csrf() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.getAttribute("content") : "";
  }

  // Take the last decision back: a new entry in the review log, the flag open again; the page reloads so
  // the row and the counts come back as the server has them.
  function undo() {
    if (!lastUndo) {
      var form = document.querySelector("form.undo-form");
      if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
      return;
    }
    var body = new FormData();
    body.append("csrf", csrf());
    body.append("undo", "1");
    var url = lastUndo;
    lastUndo = null;
    fetch(url, {
      method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false, error: "HTTP " + response.status }; });
    }).then(function (answer) {
      if (!answer.ok) { toast(answer.error || "not undone", true); return; }
      location.reload();
    });
  }

  function countDown(selector) {
    var counter = document.querySelector(selector);
    if (counter) { counter.textContent = String(Math.max(0, parseInt(counter.textContent, 10) - 1)); }
  }

  function help(show) {
    var el = document.getElementById("help");
    if (!el) { return; }
    var on = show === undefined ? !el.classList.contains("show") : show;
    el.classList.toggle("show", on);
    if (!on && location.hash === "#help") { history.replaceState(null, "", location.pathname + location.search); }
  }

  // In-place decisions on the queue: POST the same form with fetch, then drop the row.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("inplace") || !window.fetch) { return; }
    event.preventDefault();
    var row = form.closest(".item");
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false, error: "HTTP " + response.status }; });
    }).then(function (answer) {
      if (!answer.ok && answer.force) { form.submit(); return; }  // the explicit second step, as a page
      if (!answer.ok) { toast(answer.error || "not done", true); return; }
      lastUndo = answer.undo || null;
      toast(answer.message || "done", false, lastUndo);
      if (row) {
        var index = items().indexOf(row);
        row.remove();
        countDown(".queue-head .count");
        if (row.dataset.code) { countDown('.chips li[data-code="' + row.dataset.code + '"] b'); }
        if (items().length) { select(index); } else if (!lastUndo) { location.reload(); }
      }
    }).catch(function () { form.submit(); });  // network trouble: fall back to the plain POST
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
    if (event.key === "Escape") {
      help(false);
      if (typing) { target.blur(); }
      return;
    }
    if (typing) { return; }
    var item;
    switch (event.key) {
      case "j":
        if (selected >= items().length - 1 && selected >= 0) {
          var next = document.querySelector("a[rel=next]");
          if (next) { location.href = next.href; }
        } else { select(selected + 1); }
        break;
      case "k": select(selected - 1); break;
      case "o": case "Enter":
        item = current();
        if (item && item.dataset.href) { location.href = item.dataset.href; } else { return; }
        break;
      case "c": case "d":
        item = current();
        var button = item && item.querySelector("button[data-key=" + event.key + "]");
        if (!button) { return; }
        button.form.requestSubmit ? button.form.requestSubmit(button) : button.form.submit();
        break;
      case "e": case "n":
        item = current();
        var field = item && item.querySelector(event.key === "e" ? ".serial-field" : ".note-field");
        if (!field) { return; }
        field.focus();
        break;
      case "u": undo(); break;
      case "?": help(); break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a");
    if (link && link.classList.contains("help-link")) { event.preventDefault(); help(true); }
    else if (link && link.classList.contains("close")) { event.preventDefault(); help(false); }
    else if (event.target.id === "help") { help(false); }
    var row = event.target.closest && event.target.closest(".item");
    if (row) { select(items().indexOf(row)); }
  });

  if (items().length && document.querySelector(".flag-card")) { select(0); }
})();
