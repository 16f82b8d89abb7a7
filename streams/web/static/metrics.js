// What the page shows, and how each figure reads. Rates name their numerator and denominator (the
// API's own columns: sinks/clickhouse/schema.py DERIVED_METRICS), so a rate is never shown alone.

export const METRICS = {
  attempts: { label: "Attempts", kind: "count", unit: "attempts" },
  contacts: { label: "Contacts", kind: "count", unit: "contacts" },
  contact_rate: {
    label: "Contact rate", kind: "rate", numerator: "contacts", denominator: "attempts", unit: "attempts",
    noun: "contact",
  },
  ids: { label: "IDs", kind: "count", unit: "IDs" },
  support_rate: {
    label: "Support rate", kind: "rate", numerator: "supporters", denominator: "ids", unit: "IDs", noun: "support",
  },
  signups: { label: "Signups", kind: "count", unit: "signups" },
  email_unique_clicks: { label: "Unique clicks", kind: "count", unit: "unique clicks" },
  email_click_rate: {
    label: "Click rate", kind: "rate", numerator: "email_unique_clicks", denominator: "email_delivered",
    unit: "delivered emails", noun: "clicks",
  },
  email_unsubscribes: { label: "Unsubscribes", kind: "count", unit: "unsubscribes" },
  email_unsubscribe_rate: {
    label: "Unsubscribe rate", kind: "rate", numerator: "email_unsubscribes", denominator: "email_delivered",
    unit: "delivered emails", noun: "unsubscribes",
  },
  email_delivered: { label: "Emails delivered", kind: "count", unit: "delivered emails" },
};

// Time-series panels: one chart each.
export const CHARTS = [
  "attempts", "contacts", "contact_rate", "ids", "support_rate", "signups", "email_unique_clicks",
  "email_click_rate",
];

// Table columns, in order; the first is the default sort.
export const COLUMNS = [
  "attempts", "contacts", "contact_rate", "ids", "support_rate", "signups", "email_delivered", "email_click_rate",
  "email_unsubscribes",
];

// Headline figures above the charts.
export const HEADLINE = ["attempts", "contact_rate", "ids", "support_rate", "signups", "email_click_rate"];
