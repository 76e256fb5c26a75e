// What the interface offers to whom. The gateway decides what is allowed; this only avoids
// showing people controls that are not theirs to use.

import { currentUser } from "/js/session.js";

const role = () => currentUser().role;

export const can = {
  /** Staff accounts: administrators. */
  manageStaff: () => role() === "admin",
  /** Registering, editing and removing patients: administrators and the front desk. */
  editPatients: () => ["admin", "receptionist"].includes(role()),
  /** Removing a patient from the register: administrators and the front desk. */
  deletePatients: () => ["admin", "receptionist"].includes(role()),
  /** Reading medical records: the clinicians (the front desk and administrators do not). */
  readRecords: () => ["doctor", "nurse"].includes(role()),
  /** Booking and changing the appointments of doctor `doctorId`: the front desk and
   * administrators any, a doctor their own, nurses none. */
  changeAppointments: (doctorId) => ["admin", "receptionist"].includes(role())
    || (role() === "doctor" && Boolean(doctorId) && doctorId === currentUser().id),
  /** Booking at all (for some doctor): everyone but nurses. */
  bookAppointments: () => ["admin", "receptionist", "doctor"].includes(role()),
  /** The audit trail of who accessed what: administrators. */
  viewAudit: () => role() === "admin",
  /** The kinds of medical record this person writes: doctors all, nurses vitals, others none. */
  recordKinds: () => {
    switch (role()) {
      case "doctor":
        return ["note", "diagnosis", "vitals", "prescription", "allergy"];
      case "nurse":
        return ["vitals"];
      default:
        return [];
    }
  },
  /** Amending or withdrawing a record of `kind`. */
  changeRecord: (kind) => can.recordKinds().includes(kind),
};
