// breachguard: small helpers for the account pages, added on top of pages that work
// without them (no inline script: the pages' CSP forbids it).
//   <button data-copy-from="ID" [data-copy-compact] data-copied="…" hidden>
//       copies the text of #ID (without spaces with data-copy-compact; one item per line
//       for a list); the button appears only where the browser can copy.
//   <button data-download-from="ID" data-filename="…" hidden>
//       saves the items of the list #ID as a text file, made here in the page: the codes
//       are never sent anywhere for it.
//   <button data-print hidden>  opens the browser's print dialog (style.css prints only
//       the codes).
//   <p hidden><input type="checkbox" data-show-password="ID ID…"></p>
//       shows or hides the typed password in the fields #ID…; it appears only here, so
//       a page without this script keeps plain password fields.
"use strict";

(function () {
  function textOf(id, compact) {
    const element = document.getElementById(id);
    if (!element) return "";
    const items = element.querySelectorAll("li");
    if (items.length) {
      return Array.prototype.map.call(items, function (li) { return li.textContent.trim(); }).join("\n") + "\n";
    }
    const text = element.textContent.trim();
    return compact ? text.replace(/\s+/g, "") : text;
  }

  function announce(button, message) {
    const box = button.closest("section, li, main").querySelector(".copied");
    if (box && message) box.textContent = message;
  }

  function copy(button) {
    const text = textOf(button.dataset.copyFrom, button.hasAttribute("data-copy-compact"));
    navigator.clipboard.writeText(text).then(
      function () { announce(button, button.dataset.copied); },
      function () { announce(button, button.dataset.copyFailed || ""); }
    );
  }

  function download(button) {
    const blob = new Blob([textOf(button.dataset.downloadFrom, false)], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = button.dataset.filename || "recovery-codes.txt";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const canCopy = !!(navigator.clipboard && window.isSecureContext);
    document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
      if (!canCopy) return;
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
    document.querySelectorAll("button[data-download-from]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { download(button); });
    });
    document.querySelectorAll("button[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll("input[data-show-password]").forEach(function (box) {
      const fields = box.dataset.showPassword.split(/\s+/).map(function (id) {
        return document.getElementById(id);
      }).filter(Boolean);
      const holder = box.closest("[hidden]");
      if (holder) holder.hidden = false;
      box.checked = false;
      function show(visible) {
        fields.forEach(function (field) { field.type = visible ? "text" : "password"; });
      }
      box.addEventListener("change", function () { show(box.checked); });
      // Sent as password fields, so the browser does not keep the text in its form history.
      if (box.form) box.form.addEventListener("submit", function () { show(false); });
    });
  });
})();
