/* Review queue keys: j/k move between items, c confirm, r reject, n note, o open. Typing in a field is left alone. */
(function () {
  "use strict";
  var queue = document.querySelector("[data-review-queue]");
  if (!queue) { return; }
  var items = Array.prototype.slice.call(queue.querySelectorAll(".review-item"));
  if (!items.length) { return; }
  function current() {
    var active = document.activeElement;
    for (var i = 0; i < items.length; i++) { if (items[i] === active || items[i].contains(active)) { return i; } }
    return -1;
  }
  function focusItem(i) {
    if (i < 0 || i >= items.length) { return; }
    items[i].focus();
    items[i].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      if (event.key === "Escape") { var from = current(); event.target.blur(); focusItem(from < 0 ? 0 : from); }
      return;
    }
    var index = current();
    var item = items[index < 0 ? 0 : index];
    switch (event.key) {
      case "j": focusItem(index + 1); break;
      case "k": focusItem(index < 0 ? 0 : index - 1); break;
      case "c": item.querySelector("[data-confirm]").click(); break;
      case "r": item.querySelector("[data-reject]").click(); break;
      case "n": item.querySelector("[data-note]").focus(); break;
      case "o": item.querySelector("[data-open]").click(); break;
      default: return;
    }
    event.preventDefault();
  });
  focusItem(0);
})();
