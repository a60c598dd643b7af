// Shows a template form's conditional fields (`dependencies`, `if`/`then`/`else`) only while their
// condition holds, as Backstage's form does. Each such field is drawn by the server with
// `data-when-field` (the property its condition reads), `data-when-values` (a JSON list of the values,
// as the form shows them, for which it applies; empty: any value) and `data-when-negate` (the `else`
// branch). A field that does not apply is hidden and its inputs disabled, so the browser neither
// checks nor posts them. Without this script every field shows with a sentence saying when it
// applies, and the server drops what was posted for fields whose condition does not hold.
// Loaded with `defer`; no inline code, so the strict CSP holds.
(function () {
  "use strict";

  var form = document.querySelector("form.template-form");
  if (!form) {
    return;
  }
  var conditional = Array.prototype.slice.call(form.querySelectorAll("[data-when-field]"));
  if (conditional.length === 0) {
    return;
  }

  // The value of a field as the server's `display` writes it; "" when it has none or is disabled.
  function valueOf(name) {
    var inputs = Array.prototype.filter.call(form.elements, function (element) {
      return element.name === name && !element.disabled;
    });
    if (inputs.length === 0) {
      return "";
    }
    var input = inputs[0];
    if (input.type === "checkbox" && inputs.length === 1) {
      return input.checked ? "true" : "false";
    }
    return input.value;
  }

  function holds(field) {
    var values = [];
    try {
      values = JSON.parse(field.dataset.whenValues || "[]");
    } catch (e) {
      values = [];
    }
    var value = valueOf(field.dataset.whenField);
    var matched = values.length === 0 ? value !== "" : values.indexOf(value) !== -1;
    return field.dataset.whenNegate === "true" ? !matched : matched;
  }

  function update() {
    // Twice: a conditional field may itself decide another one.
    for (var pass = 0; pass < 2; pass += 1) {
      conditional.forEach(function (field) {
        var show = holds(field);
        field.hidden = !show;
        Array.prototype.forEach.call(
          field.querySelectorAll("input, select, textarea"),
          function (input) {
            input.disabled = !show;
          }
        );
      });
    }
  }

  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
})();
