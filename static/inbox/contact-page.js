// The contact page (templates/communications/contact.html): label colours (the page policy
// refuses inline styles, a script may set them) and focus on the first field a save refused.
for (const dot of document.querySelectorAll("[data-label-color]")) {
  dot.style.setProperty("--label-color", dot.dataset.labelColor);
}
const invalid = document.querySelector("[aria-invalid=true]");
if (invalid) invalid.focus();
