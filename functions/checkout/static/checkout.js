/* Tahsil hosted checkout: format and check the card in the page, then confirm over this origin.
 *
 * The client secret stays in the page's own URL (?client_secret=...) and goes only to this
 * origin, in the X-Client-Secret header. Messages from the server are shown with textContent. */
(function () {
  "use strict";

  var form = document.getElementById("checkout-form");
  if (!form) { return; }

  var intentId = form.getAttribute("data-intent");
  var secret = new URLSearchParams(window.location.search).get("client_secret") || "";
  var confirmUrl = "../public/payment-intents/" + encodeURIComponent(intentId) + "/confirm";
  // The page reads the shapes of the version it was written for, whatever the merchant's pin.
  var apiVersion = form.getAttribute("data-api-version");

  var inputs = {
    email: document.getElementById("email"),
    number: document.getElementById("card-number"),
    expiry: document.getElementById("card-expiry"),
    cvc: document.getElementById("card-cvc"),
    name: document.getElementById("card-name")
  };
  var order = ["email", "number", "expiry", "cvc", "name"];
  var brandBadge = document.getElementById("card-brand");
  var brandSr = document.getElementById("card-brand-name");
  var formError = document.getElementById("form-error");
  var button = document.getElementById("pay-button");
  var buttonLabel = button.querySelector(".pay-label");
  var payLabel = buttonLabel.textContent;
  var progress = document.getElementById("progress");
  var busy = false;

  // ---------------------------------------------------------------- cards (mirrors tahsil/cards.py)

  var BRANDS = [
    { id: "amex", name: "American Express", short: "Amex", ranges: [[34, 34], [37, 37]], lengths: [15], cvc: 4 },
    { id: "visa", name: "Visa", short: "Visa", ranges: [[4, 4]], lengths: [13, 16, 19], cvc: 3 },
    { id: "mastercard", name: "Mastercard", short: "Mastercard", ranges: [[51, 55], [2221, 2720]], lengths: [16], cvc: 3 },
    { id: "discover", name: "Discover", short: "Discover", ranges: [[6011, 6011], [644, 649], [65, 65]], lengths: [16, 19], cvc: 3 },
    { id: "jcb", name: "JCB", short: "JCB", ranges: [[3528, 3589]], lengths: [16, 17, 18, 19], cvc: 3 },
    { id: "diners", name: "Diners Club", short: "Diners", ranges: [[300, 305], [36, 36], [38, 39]], lengths: [14, 16, 19], cvc: 3 },
    { id: "unionpay", name: "UnionPay", short: "UnionPay", ranges: [[62, 62]], lengths: [16, 17, 18, 19], cvc: 3 }
  ];

  function brandOf(digits) {
    for (var i = 0; i < BRANDS.length; i++) {
      var brand = BRANDS[i];
      for (var j = 0; j < brand.ranges.length; j++) {
        var lo = brand.ranges[j][0], hi = brand.ranges[j][1];
        var width = String(lo).length;
        if (digits.length < width) { continue; }
        var head = parseInt(digits.slice(0, width), 10);
        if (head >= lo && head <= hi) { return brand; }
      }
    }
    return null;
  }

  function luhn(digits) {
    var total = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) { d *= 2; if (d > 9) { d -= 9; } }
      total += d;
    }
    return total % 10 === 0;
  }

  function groupsFor(brand, length) {
    if (brand && brand.id === "amex") { return [4, 6, 5]; }
    if (brand && brand.id === "diners" && length <= 14) { return [4, 6, 4]; }
    return [4, 4, 4, 4, 3];
  }

  function grouped(digits, brand) {
    var parts = [], at = 0, sizes = groupsFor(brand, digits.length);
    for (var i = 0; i < sizes.length && at < digits.length; i++) {
      parts.push(digits.slice(at, at + sizes[i]));
      at += sizes[i];
    }
    return parts.join(" ");
  }

  function onlyDigits(text) { return (text || "").replace(/\D/g, ""); }

  function maxDigits(brand) { return brand ? Math.max.apply(null, brand.lengths) : 19; }

  // ---------------------------------------------------------------- formatting as the customer types

  function reformat(input, format) {
    var caret = input.selectionStart === null ? input.value.length : input.selectionStart;
    var digitsBefore = onlyDigits(input.value.slice(0, caret)).length;
    var next = format(input.value);
    input.value = next;
    var pos = 0, seen = 0;
    while (pos < next.length && seen < digitsBefore) {
      if (/\d/.test(next.charAt(pos))) { seen++; }
      pos++;
    }
    if (document.activeElement === input) { input.setSelectionRange(pos, pos); }
  }

  function formatNumber(value) {
    var digits = onlyDigits(value);
    var brand = brandOf(digits);
    return grouped(digits.slice(0, maxDigits(brand)), brand);
  }

  function formatExpiry(value) {
    var digits = onlyDigits(value).slice(0, 4);
    if (digits.length === 1 && digits > "1") { digits = "0" + digits; }
    if (digits.length <= 2) { return digits; }
    return digits.slice(0, 2) + " / " + digits.slice(2);
  }

  function showBrand() {
    var brand = brandOf(onlyDigits(inputs.number.value));
    brandBadge.textContent = brand ? brand.short : "";
    brandBadge.title = brand ? brand.name : "";
    brandBadge.className = "brand" + (brand ? " brand-" + brand.id : "");
    brandSr.textContent = brand ? brand.name : "";
    inputs.number.parentNode.classList.toggle("has-brand", !!brand);
  }

  inputs.number.addEventListener("input", function () {
    reformat(inputs.number, formatNumber);
    showBrand();
    if (inputs.number.getAttribute("aria-invalid") === "true") { check("number"); }
  });
  inputs.expiry.addEventListener("input", function () {
    reformat(inputs.expiry, formatExpiry);
    if (inputs.expiry.getAttribute("aria-invalid") === "true") { check("expiry"); }
  });
  inputs.cvc.addEventListener("input", function () {
    inputs.cvc.value = onlyDigits(inputs.cvc.value).slice(0, 4);
    if (inputs.cvc.getAttribute("aria-invalid") === "true") { check("cvc"); }
  });
  ["email", "name"].forEach(function (key) {
    inputs[key].addEventListener("input", function () {
      if (inputs[key].getAttribute("aria-invalid") === "true") { check(key); }
    });
  });
  // A message appearing on blur moves the button down; when the blur comes from pressing that
  // button, the click would land beside it. So leave those checks to the submit handler.
  var pressingButton = false;
  button.addEventListener("pointerdown", function () { pressingButton = true; });
  document.addEventListener("pointerup", function () { setTimeout(function () { pressingButton = false; }, 0); });
  document.addEventListener("pointercancel", function () { pressingButton = false; });
  order.forEach(function (key) {
    inputs[key].addEventListener("blur", function (event) {
      if (pressingButton || event.relatedTarget === button) { return; }
      if (inputs[key].value.trim() !== "") { check(key); }
    });
  });

  // ---------------------------------------------------------------- checks (Luhn, expiry, CVC) with accessible messages

  function expiryParts() {
    var digits = onlyDigits(inputs.expiry.value);
    return { month: parseInt(digits.slice(0, 2), 10), year: 2000 + parseInt(digits.slice(2, 4), 10), digits: digits };
  }

  var checks = {
    email: function () {
      var value = inputs.email.value.trim();
      if (!value) { return "Enter your email address."; }
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) { return "Enter a valid email address, like name@example.com."; }
      return "";
    },
    number: function () {
      var digits = onlyDigits(inputs.number.value);
      if (!digits) { return "Enter your card number."; }
      var brand = brandOf(digits);
      if (digits.length >= 6 && !brand) { return "This card brand is not accepted."; }
      if (!brand || brand.lengths.indexOf(digits.length) < 0) {
        if (brand && digits.length < maxDigits(brand)) { return "Your card number is incomplete."; }
        if (digits.length < 12) { return "Your card number is incomplete."; }
        return "Your card number is invalid.";
      }
      if (!luhn(digits)) { return "Your card number is invalid. Check it and try again."; }
      return "";
    },
    expiry: function () {
      var parts = expiryParts();
      if (!parts.digits) { return "Enter the card's expiry date."; }
      if (parts.digits.length < 4) { return "Your card's expiry date is incomplete (MM / YY)."; }
      if (parts.month < 1 || parts.month > 12) { return "Your card's expiry month is invalid."; }
      var now = new Date();
      var year = now.getFullYear(), month = now.getMonth() + 1;
      if (parts.year < year || (parts.year === year && parts.month < month)) { return "Your card has expired."; }
      if (parts.year > year + 25) { return "Your card's expiry year is invalid."; }
      return "";
    },
    cvc: function () {
      var digits = onlyDigits(inputs.cvc.value);
      var brand = brandOf(onlyDigits(inputs.number.value));
      var wanted = brand ? brand.cvc : 3;
      if (!digits) { return "Enter the card's security code."; }
      if (digits.length !== wanted) { return "The security code is " + wanted + " digits."; }
      return "";
    },
    name: function () {
      return inputs.name.value.trim() ? "" : "Enter the name on the card.";
    }
  };

  function setError(key, message) {
    var input = inputs[key];
    var holder = document.getElementById(input.id + "-error");
    input.setAttribute("aria-invalid", message ? "true" : "false");
    if (holder.textContent !== message) { holder.textContent = message; }
  }

  function check(key) {
    var message = checks[key]();
    setError(key, message);
    return message === "";
  }

  // ---------------------------------------------------------------- confirm

  function showFormError(text) {
    formError.textContent = text;
    formError.hidden = false;
  }

  function setBusy(on, label) {
    busy = on;
    button.disabled = on;
    button.classList.toggle("busy", on);
    button.setAttribute("aria-busy", on ? "true" : "false");
    buttonLabel.textContent = label || payLabel;
  }

  function attemptsLeft(n) {
    return "You have " + n + (n === 1 ? " attempt" : " attempts") + " left.";
  }

  function reason(error) {
    var text = (error && error.message) || "declined";
    return text.replace(/^card declined:\s*/i, "").split(";")[0];
  }

  var FIELD_OF_PARAM = {
    "card.number": "number", "card.exp_month": "expiry", "card.exp_year": "expiry", "card": "expiry",
    "card.cvv": "cvc", "card.cardholder_name": "name", "customer_email": "email"
  };

  function lockPage(text) {
    showFormError(text);
    form.hidden = true;
    document.getElementById("pay-title").textContent = "Payment locked";
    var cancel = document.getElementById("cancel-link");
    if (cancel) { cancel.textContent = cancel.textContent.replace(/^Cancel and return/, "Return"); }
    formError.focus();
  }

  function handle(status, body) {
    var error = body && body.error;
    if (status === 200 && body && body.success && body.data.next_action) {
      // 3-D Secure: the bank's page, then back here (the client secret rides along, never stored) or on to the store.
      setBusy(true, "Confirming with your bank…");
      progress.textContent = "Your bank asks you to confirm this payment. Taking you to your bank.";
      var next = new URL(body.data.next_action.redirect_to_url.url, window.location.href);
      next.searchParams.set("client_secret", secret);
      window.location.assign(next.toString());
      return;
    }
    if (status === 200 && body && body.success) {
      setBusy(true, "Paid");
      progress.textContent = "Payment successful. Taking you back to the store.";
      window.location.assign(body.data.redirect_url);
      return;
    }
    if (status === 402) {
      var left = typeof error.remaining_attempts === "number" ? error.remaining_attempts : 0;
      if (left <= 0) {
        lockPage("Your card was declined: " + reason(error) + ". This payment is now locked after too many declined " +
                 "attempts; nothing was charged. Return to the store to try again.");
        return;
      }
      setBusy(false);
      showFormError("Your card was declined: " + reason(error) + ". " + attemptsLeft(left) +
                    " Try another card or check the details.");
      inputs.cvc.value = "";
      inputs.number.focus();
      return;
    }
    if (status === 410 && error && error.code === "MAX_ATTEMPTS_REACHED") {
      lockPage("This payment is locked after too many declined attempts; nothing was charged. " +
               "Return to the store to try again.");
      return;
    }
    if (status === 410 || status === 409) {
      // Expired, paid or canceled meanwhile: the server renders the right page.
      window.location.reload();
      return;
    }
    setBusy(false);
    if (status === 401) {
      showFormError("This payment link is not valid. Return to the store and start again.");
      button.disabled = true;
      return;
    }
    if (status === 400 && error && FIELD_OF_PARAM[error.param]) {
      var key = FIELD_OF_PARAM[error.param];
      setError(key, error.message.replace(/^[\w.]+:\s*/, "").replace(/^./, function (c) { return c.toUpperCase(); }));
      inputs[key].focus();
      return;
    }
    showFormError(status === 400 && error ? error.message :
                  "Something went wrong and your payment did not go through. Please try again.");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }  // a double click sends one request (and the server would refuse a second charge anyway)
    var firstBad = null;
    order.forEach(function (key) {
      if (!check(key) && firstBad === null) { firstBad = key; }
    });
    if (firstBad !== null) {
      inputs[firstBad].focus();
      return;
    }
    formError.hidden = true;
    setBusy(true, "Processing…");
    progress.textContent = "Processing your payment.";
    var exp = expiryParts();
    var payload = {
      card: {
        number: onlyDigits(inputs.number.value),
        exp_month: exp.month,
        exp_year: exp.year,
        cvv: onlyDigits(inputs.cvc.value),
        cardholder_name: inputs.name.value.trim()
      },
      customer_email: inputs.email.value.trim()
    };
    fetch(confirmUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Client-Secret": secret, "Tahsil-Version": apiVersion },
      body: JSON.stringify(payload),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer"
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        handle(response.status, body);
      });
    }).catch(function () {
      setBusy(false);
      showFormError("We could not reach the payment server. Check your connection and try again.");
    });
  });

  formError.setAttribute("tabindex", "-1");
})();
