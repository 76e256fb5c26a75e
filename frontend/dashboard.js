// The dashboard: checks the session, wires the header (account, sign out), the live feed panel
// and the router.

import { currentUser, endSession, hasStoredToken, EXPIRED_MESSAGE, onSessionEnd, sessionToken, watchExpiry } from "/js/session.js";
import { openChangePassword, signOut } from "/js/account.js";
import { can } from "/js/roles.js";
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
import { auditView } from "/js/views/audit.js";

if (!sessionToken()) {
  endSession(hasStoredToken() ? EXPIRED_MESSAGE : "", { keepPlace: true });
} else {
  start();
}

function start() {
  const user = currentUser();
  document.getElementById("who").textContent = `${user.name} · ${formatRole(user.role)}`;
  const signOutButton = document.getElementById("sign-out");
  signOutButton.addEventListener("click", () => {
    signOutButton.disabled = true;
    signOutButton.textContent = "Signing out…";
    // First the feed: its stream ends when the token is revoked, and it must not take that
    // for a rejected session.
    liveFeed.stop();
    signOut();
  });
  document.getElementById("change-password").addEventListener("click", () => openChangePassword({
    // The old token is revoked: the feed reconnects with the new one.
    onChanged: () => {
      liveFeed.stop();
      liveFeed.start();
    },
  }));
  document.getElementById("nav-audit").hidden = !can.viewAudit();
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
      route("/audit", "audit", auditView),
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
