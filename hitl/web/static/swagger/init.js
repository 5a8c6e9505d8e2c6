// Starts Swagger UI on /docs. A file of its own, not an inline script: the CSP runs no inline
// script. The URL of the OpenAPI document comes from the page (data-openapi-url).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    validatorUrl: null,  // no badge fetched from swagger.io: nothing leaves this server
  });
})();
