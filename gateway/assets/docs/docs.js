// Starts Swagger UI on the gateway's own document. A file, not an inline script: the page is
// served with a Content-Security-Policy that allows only the gateway's own files.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // "Authorize" keeps the token for "Try it out" calls in this tab only.
  persistAuthorization: false,
  // No validator badge: it would call validator.swagger.io (offline clinics, and a CSP).
  validatorUrl: null,
});
