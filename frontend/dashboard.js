// The dashboard: checks the session, wires the header, the live feed panel and the router.

import { currentUser, endSession, hasStoredToken, EXPIRED_MESSAGE, SIGNED_OUT_MESSAGE, onSessionEnd, sessionToken, watchExpiry } from "/js/session.js";
import { liveFeed } from "/js/live.js";
import { learn } from "/js/directory.js";
import { startRouter, route } from "/js/router.js";
import { formatRole } from "/js/format.js";
import { mountFeedPanel } from "/js/views/feed.js";
import { patientsView } from "/js/views/patients-list.js";
import { patientFormView } from "/js/views/patient-form.js";
import { patientView } from "/js/views/patient-page.js";
import { staffView } from "/js/views/staff.js";
import { staffFormView } from "/js/views/staff-form.js";
import { scheduleView } from "/js/views/schedule.js";

if (!sessionToken()) {
  endSession(hasStoredToken() ? EXPIRED_MESSAGE : "", { keepPlace: true });
} else {
  start();
}

function start() {
  const user = currentUser();
  document.getElementById("who").textContent = `${user.name} · ${formatRole(user.role)}`;
  document.getElementById("sign-out").addEventListener("click", () => endSession(SIGNED_OUT_MESSAGE));
  watchExpiry();

  onSessionEnd(() => liveFeed.stop());
  liveFeed.subscribe((event) => {
    if (event.aggregate) {
      learn(event);
    }
  });
  mountFeedPanel(liveFeed);
  liveFeed.start();

  const links = document.querySelectorAll(".nav a[data-section]");
  startRouter({
    outlet: document.getElementById("main"),
    routes: [
      route("/patients", "patients", patientsView),
      route("/patients/new", "patients", patientFormView),
      route("/patients/:id", "patients", patientView),
      route("/patients/:id/edit", "patients", patientFormView),
      route("/staff", "staff", staffView),
      route("/staff/new", "staff", staffFormView),
      route("/staff/:id/edit", "staff", staffFormView),
      route("/appointments", "appointments", scheduleView),
    ],
    fallback: () => (user.role === "doctor" ? "/appointments" : "/patients"),
    onRoute(section) {
      for (const link of links) {
        if (link.dataset.section === section) {
          link.setAttribute("aria-current", "page");
        } else {
          link.removeAttribute("aria-current");
        }
      }
    },
  });
}
