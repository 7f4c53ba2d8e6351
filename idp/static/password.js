/* Set-password helper for templates/flows/_password_fields.html.
 *
 * Reads the policy from data attributes, marks each listed rule as met or not
 * while the person types, says whether the confirmation matches, and generates
 * a password with crypto.getRandomValues that satisfies the policy. The server
 * checks everything again; this script only helps. Loaded with the CSP nonce,
 * no inline handlers.
 */
(function () {
  "use strict";

  var UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ";
  var LOWER = "abcdefghijkmnopqrstuvwxyz";
  var DIGITS = "23456789";
  var SYMBOLS = "!#$%&*+-=?@^_~";
  var GENERATED_LENGTH = 20;

  // The same tests as idp/services/password_policy.py (code points, not UTF-16 units).
  var TESTS = {
    min_length: function (value, policy) { return Array.from(value).length >= policy.minLength; },
    upper: function (value) { return /\p{Lu}/u.test(value); },
    lower: function (value) { return /\p{Ll}/u.test(value); },
    digit: function (value) { return /\p{Nd}/u.test(value); },
    symbol: function (value) { return /[^A-Za-z0-9\s]/.test(value); },
    contains_email: function (value, policy) {
      return !policy.emailLocal || value.toLowerCase().indexOf(policy.emailLocal) === -1;
    }
  };

  function readPolicy(root) {
    var data = root.dataset;
    return {
      minLength: parseInt(data.minLength, 10) || 8,
      maxLength: parseInt(data.maxLength, 10) || 1024,
      upper: data.requireUpper === "true",
      lower: data.requireLower === "true",
      digit: data.requireDigit === "true",
      symbol: data.requireSymbol === "true",
      emailLocal: (data.emailLocal || "").toLowerCase()
    };
  }

  // An unbiased random index below `max` (rejection sampling over 32-bit values).
  function randomIndex(max) {
    var buffer = new Uint32Array(1);
    var limit = Math.floor(0x100000000 / max) * max;
    do {
      window.crypto.getRandomValues(buffer);
    } while (buffer[0] >= limit);
    return buffer[0] % max;
  }

  function pick(chars) { return chars.charAt(randomIndex(chars.length)); }

  function generate(policy) {
    var length = Math.min(policy.maxLength, Math.max(GENERATED_LENGTH, policy.minLength));
    var all = UPPER + LOWER + DIGITS + SYMBOLS;
    for (var attempt = 0; attempt < 50; attempt++) {
      // One of each class, then the rest from all of them, then shuffled (Fisher-Yates).
      var chars = [pick(UPPER), pick(LOWER), pick(DIGITS), pick(SYMBOLS)];
      while (chars.length < length) { chars.push(pick(all)); }
      for (var i = chars.length - 1; i > 0; i--) {
        var j = randomIndex(i + 1);
        var swap = chars[i]; chars[i] = chars[j]; chars[j] = swap;
      }
      var candidate = chars.join("");
      if (TESTS.contains_email(candidate, policy)) { return candidate; }
    }
    return null;
  }

  function setState(item, met, texts) {
    item.classList.toggle("rule-met", met);
    item.classList.toggle("rule-unmet", !met);
    var icon = item.querySelector(".rule-icon");
    if (icon) { icon.textContent = met ? "\u2713" : "\u2717"; }
    var state = item.querySelector(".rule-state");
    if (state) { state.textContent = "(" + (met ? texts.met : texts.unmet) + ")"; }
  }

  function init(root) {
    var form = root.closest("form");
    var password = root.querySelector("#new_password");
    var confirm = root.querySelector("#confirm_password");
    var status = root.querySelector("#confirm-status");
    var tools = root.querySelector(".password-tools");
    var show = root.querySelector("#show-password");
    var generateButton = root.querySelector("#generate-password");
    var generated = root.querySelector("#generated");
    var generatedValue = root.querySelector("#generated-value");
    if (!password || !confirm) { return; }
    var policy = readPolicy(root);
    var texts = {
      met: root.dataset.textMet, unmet: root.dataset.textUnmet,
      match: root.dataset.textMatch, nomatch: root.dataset.textNomatch
    };

    function checkRules() {
      var value = password.value;
      root.querySelectorAll("[data-rule]").forEach(function (item) {
        var test = TESTS[item.dataset.rule];
        if (test && value) {
          setState(item, test(value, policy), texts);
        }
      });
    }

    function checkConfirm() {
      if (!confirm.value) {
        status.textContent = "";
        confirm.removeAttribute("aria-invalid");
        return;
      }
      var same = confirm.value === password.value;
      status.textContent = same ? texts.match : texts.nomatch;
      status.classList.toggle("match", same);
      status.classList.toggle("nomatch", !same);
      if (same) { confirm.removeAttribute("aria-invalid"); }
    }

    function reveal(visible) {
      password.type = visible ? "text" : "password";
      confirm.type = visible ? "text" : "password";
      if (show) { show.checked = visible; }
    }

    password.addEventListener("input", function () {
      checkRules();
      checkConfirm();
      if (generated && !generated.hidden && password.value !== generatedValue.textContent) {
        generated.hidden = true;
      }
    });
    confirm.addEventListener("input", checkConfirm);
    if (show) {
      show.addEventListener("change", function () { reveal(show.checked); });
    }
    if (generateButton) {
      generateButton.addEventListener("click", function () {
        var value = generate(policy);
        if (!value) { return; }
        password.value = value;
        confirm.value = value;
        reveal(true);
        generatedValue.textContent = value;
        generated.hidden = false;
        checkRules();
        checkConfirm();
        password.focus();
        password.select();
      });
    }
    if (form) {
      // Once sent, the form cannot be sent again by a second click (the server refuses too).
      form.addEventListener("submit", function (event) {
        if (form.dataset.submitted === "true") { event.preventDefault(); return; }
        form.dataset.submitted = "true";
      });
      // Back to this page from the history: it may be sent again.
      window.addEventListener("pageshow", function () { delete form.dataset.submitted; });
    }
    if (tools) { tools.hidden = false; }
    if (password.value) { checkRules(); }
  }

  function start() {
    document.querySelectorAll("[data-password-policy]").forEach(init);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
