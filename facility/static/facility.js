// Small helpers; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
        event.preventDefault();
        return;
      }
      // A button tapped twice in a hurry posts once (after the form data is taken).
      setTimeout(() => {
        for (const b of form.querySelectorAll("button")) b.disabled = true;
      }, 0);
    });
  }
});
// Coming back with the Back button shows the page as it was left: usable again.
window.addEventListener("pageshow", () => {
  for (const b of document.querySelectorAll("form button")) b.disabled = false;
});
