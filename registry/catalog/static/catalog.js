// The catalog's only script: search, filters and sorting on the index pages (over a search index
// fetched the first time they are used), and copy buttons for commands. Pages are complete without it.
"use strict";
(function () {
  var root = document.body.getAttribute("data-root") || "";

  // ---------------------------------------------------------------- copy buttons
  function copyText(text, button) {
    function done(ok) {
      button.textContent = ok ? "Copied" : "Press Ctrl+C";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { fallback(); });
    } else {
      fallback();
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      done(ok);
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll(".command"), function (box) {
    var code = box.querySelector("code");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy the command: " + code.textContent);
    button.addEventListener("click", function () { copyText(code.textContent, button); });
    box.appendChild(button);
  });

  // ---------------------------------------------------------------- versions: open the one linked to
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.classList.contains("version")) {
      var details = target.querySelector("details");
      if (details) { details.open = true; }
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();

  // ---------------------------------------------------------------- index: search, filter, sort
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.hidden = false;
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  var rowsBody = document.getElementById("rows");
  var count = document.getElementById("result-count");
  var more = document.getElementById("more");
  var pager = document.getElementById("pager");
  var controls = ["q", "f-task", "f-project", "f-state", "f-license", "sort", "show-withdrawn"].map(function (id) {
    return document.getElementById(id);
  });
  var index = null, loading = null, shown = 0, results = [];
  var STEP = 100;

  function load() {
    if (index) { return Promise.resolve(index); }
    if (!loading) {
      count.textContent = "Loading the search index…";
      loading = fetch(root + "search-index.json").then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }).then(function (data) {
        var f = data.fields;
        index = data.rows.map(function (row) {
          var m = {};
          f.forEach(function (name, i) { m[name] = row[i]; });
          m.hay = [m.name, m.summary, m.project, m.task, (m.tags || []).join(" "), (m.owners || []).join(" "),
                   m.license || ""].join("\n").toLowerCase();
          return m;
        });
        return index;
      });
    }
    return loading;
  }

  // like the pages' numbers (Python's "{:.4g}"): four significant digits, no trailing zeros
  function num(v) {
    var text = Number(v).toPrecision(4);
    if (text.indexOf("e") < 0 && text.indexOf(".") >= 0) { text = text.replace(/0+$/, "").replace(/\.$/, ""); }
    return text;
  }

  function cell(tr, label, text, extra) {
    var td = document.createElement("td");
    td.setAttribute("data-label", label);
    if (text !== null) { td.textContent = text; }
    if (extra) { extra(td); }
    tr.appendChild(td);
    return td;
  }

  function badge(text, cls) {
    var span = document.createElement("span");
    span.className = "badge " + cls;
    span.textContent = text;
    return span;
  }

  function row(m) {
    var tr = document.createElement("tr");
    if (m.withdrawn) { tr.className = "withdrawn"; }
    cell(tr, "Model", null, function (td) {
      var a = document.createElement("a");
      a.className = "model-link";
      a.href = root + "models/" + encodeURIComponent(m.name) + "/";
      a.textContent = m.name;
      td.appendChild(a);
      if (m.summary) {
        var d = document.createElement("div");
        d.className = "summary";
        d.textContent = m.summary;
        td.appendChild(d);
      }
    });
    cell(tr, "State", null, function (td) {
      td.appendChild(badge(m.state, "state-" + m.state));
      if (m.withdrawn) { td.appendChild(document.createTextNode(" ")); td.appendChild(badge("withdrawn", "withdrawn")); }
    });
    cell(tr, "Latest", m.latest || "–");
    cell(tr, "Task", m.task || "–");
    cell(tr, "Project", m.project || "–");
    cell(tr, "Owners", (m.owners || []).join(", ") || "–");
    cell(tr, "License", m.license || "–");
    cell(tr, "Released", m.date || "–");
    cell(tr, "Metric", m.metric === null ? "–" : m.metric + " " + num(m.metric_value) + " on " + m.metric_dataset);
    return tr;
  }

  function render(reset) {
    if (reset) {
      while (rowsBody.firstChild) { rowsBody.removeChild(rowsBody.firstChild); }
      shown = 0;
    }
    var frag = document.createDocumentFragment();
    results.slice(shown, shown + STEP).forEach(function (m) { frag.appendChild(row(m)); });
    rowsBody.appendChild(frag);
    shown = Math.min(results.length, shown + STEP);
    count.textContent = results.length + (results.length === 1 ? " model" : " models") +
      (shown < results.length ? " (showing " + shown + ")" : "");
    more.hidden = shown >= results.length;
    if (pager) { pager.hidden = true; }
  }

  function apply() {
    load().then(function (all) {
      var q = controls[0].value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      var task = controls[1].value, project = controls[2].value, state = controls[3].value, license = controls[4].value;
      var sort = controls[5].value, withdrawn = controls[6].checked;
      results = all.filter(function (m) {
        if (m.withdrawn && !withdrawn) { return false; }
        if (task && m.task !== task) { return false; }
        if (project && m.project !== project) { return false; }
        if (state && m.state !== state) { return false; }
        if (license && m.license !== license) { return false; }
        for (var i = 0; i < q.length; i++) { if (m.hay.indexOf(q[i]) < 0) { return false; } }
        return true;
      });
      if (sort === "date") {
        results.sort(function (a, b) { return (b.date || "").localeCompare(a.date || "") || a.name.localeCompare(b.name); });
      } else if (sort === "metric") {
        results.sort(function (a, b) {
          var x = a.metric_value === null ? -Infinity : a.metric_value, y = b.metric_value === null ? -Infinity : b.metric_value;
          return y - x || a.name.localeCompare(b.name);
        });
      } else {
        results.sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
      }
      render(true);
    }, function (err) {
      count.textContent = "The search index could not be loaded (" + err.message + "); the pages below still list every model.";
    });
  }

  var timer = null;
  controls[0].addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  controls.slice(1).forEach(function (c) { c.addEventListener("change", apply); });
  more.addEventListener("click", function () { render(false); });
})();
