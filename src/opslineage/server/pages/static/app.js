// Every page: show the reader's local time when they hover over (or focus) a UTC time.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      element.title = moment.toLocaleString() + " (local time)";
    }
  }
});
