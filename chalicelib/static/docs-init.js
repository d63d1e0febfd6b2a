// Starts Swagger UI on /docs. A file of its own (not an inline script) so that the page's
// Content-Security-Policy can forbid inline scripts.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    oauth2RedirectUrl: new URL("docs/oauth2-redirect.html", window.location.href).href,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
