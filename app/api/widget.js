/* CVI Funding Finder deadlines widget.
 *
 * Paste into any page:
 *   <div id="cvi-deadlines"></div>
 *   <script src="https://FINDER/api/v1/widget.js" data-department="DOJ" data-state="CA" data-limit="5" async></script>
 *
 * Options (all optional): data-department (one or more codes, comma-separated), data-state (two-letter
 * code), data-limit (1-20), data-target (id of the element to fill; default "cvi-deadlines", created
 * after the script tag when missing), data-title (heading text).
 * Every text is set with textContent (never innerHTML), and links must be http(s). On a page whose
 * Content-Security-Policy uses nonces, give the script tag the page's nonce: the widget's style block
 * takes it too.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {
    var candidates = document.querySelectorAll('script[src*="/api/v1/widget.js"]:not([data-cvi-started])');
    script = candidates.length ? candidates[0] : null;
  }
  if (!script) { return; }
  script.setAttribute("data-cvi-started", "1");

  var apiBase = new URL(".", script.src).href; // …/api/v1/
  var department = (script.getAttribute("data-department") || "").trim();
  var state = (script.getAttribute("data-state") || "").trim();
  var limit = parseInt(script.getAttribute("data-limit") || "5", 10);
  if (!(limit >= 1 && limit <= 20)) { limit = 5; }
  var heading = script.getAttribute("data-title") || "Upcoming CVI funding deadlines";

  function container() {
    var id = script.getAttribute("data-target") || "cvi-deadlines";
    var el = document.getElementById(id);
    if (!el || el.getAttribute("data-cvi-widget")) {
      el = document.createElement("div");
      script.parentNode.insertBefore(el, script.nextSibling);
    }
    el.setAttribute("data-cvi-widget", "1");
    return el;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function safeUrl(value) {
    try {
      var url = new URL(value, apiBase);
      return (url.protocol === "https:" || url.protocol === "http:") ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function formatDate(iso) {
    var parts = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    if (!parts) { return String(iso || ""); }
    var date = new Date(Date.UTC(+parts[1], +parts[2] - 1, +parts[3]));
    try {
      return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
    } catch (e) {
      return iso;
    }
  }

  function addStyles() {
    if (document.getElementById("cvi-widget-styles")) { return; }
    var style = el("style");
    style.id = "cvi-widget-styles";
    // A page with a nonce-based Content-Security-Policy allows this block when the script tag has its nonce.
    if (script.nonce) { style.nonce = script.nonce; }
    style.textContent =
      ".cvi-widget{font:inherit;border:1px solid #c8ccd2;border-radius:6px;padding:.75rem 1rem;max-width:40rem}" +
      ".cvi-widget h2{font-size:1.1rem;margin:0 0 .5rem}" +
      ".cvi-widget ul{list-style:none;margin:0;padding:0}" +
      ".cvi-widget li{padding:.4rem 0;border-top:1px solid #e4e6ea}" +
      ".cvi-widget li:first-child{border-top:0}" +
      ".cvi-widget .cvi-meta{display:block;font-size:.875rem;color:#3d4450}" +
      ".cvi-widget .cvi-foot{font-size:.8rem;margin:.5rem 0 0}";
    (document.head || document.documentElement).appendChild(style);
  }

  var root = container();
  addStyles();
  var section = el("section", "cvi-widget");
  var headingId = "cvi-widget-heading-" + Math.random().toString(36).slice(2, 9);
  var h2 = el("h2", null, heading);
  h2.id = headingId;
  section.setAttribute("aria-labelledby", headingId);
  var status = el("p", "cvi-status", "Loading deadlines…");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  section.setAttribute("aria-busy", "true");
  section.appendChild(h2);
  section.appendChild(status);
  while (root.firstChild) { root.removeChild(root.firstChild); }
  root.appendChild(section);

  var query = new URLSearchParams();
  if (department) { query.set("department", department); }
  if (state) { query.set("state", state); }
  query.set("limit", String(limit));

  function render(data) {
    var items = (data && data.items) || [];
    section.setAttribute("aria-busy", "false");
    if (!items.length) {
      status.textContent = "No upcoming CVI deadlines right now.";
      return;
    }
    status.textContent = items.length + (items.length === 1 ? " upcoming deadline" : " upcoming deadlines");
    status.className = "cvi-status cvi-visually-hidden";
    status.style.position = "absolute";
    status.style.left = "-10000px";
    var list = el("ul");
    items.forEach(function (item) {
      var li = el("li");
      var href = safeUrl(item.link);
      var title = href ? el("a", "cvi-title", item.title) : el("span", "cvi-title", item.title);
      if (href) { title.href = href; title.rel = "noopener"; }
      li.appendChild(title);
      var meta = el("span", "cvi-meta");
      meta.appendChild(document.createTextNode(String(item.department || "") + " · Closes "));
      var time = el("time", null, formatDate(item.close_date));
      time.setAttribute("datetime", String(item.close_date || ""));
      meta.appendChild(time);
      var days = Number(item.days_left);
      if (!isNaN(days)) {
        meta.appendChild(document.createTextNode(days === 0 ? " (today)" : " (" + days + (days === 1 ? " day left)" : " days left)")));
      }
      li.appendChild(meta);
      list.appendChild(li);
    });
    section.appendChild(list);
    var foot = el("p", "cvi-foot");
    var more = el("a", null, "More CVI funding on CVI Funding Finder");
    more.href = new URL("../../", apiBase).href;
    foot.appendChild(more);
    section.appendChild(foot);
  }

  function fail() {
    section.setAttribute("aria-busy", "false");
    status.textContent = "Deadlines could not be loaded right now.";
  }

  fetch(apiBase + "deadlines?" + query.toString(), { headers: { Accept: "application/json" }, credentials: "omit" })
    .then(function (response) { if (!response.ok) { throw new Error(String(response.status)); } return response.json(); })
    .then(render, fail);
})();
