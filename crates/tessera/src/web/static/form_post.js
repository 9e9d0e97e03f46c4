// Submits the OpenID Connect form_post response as soon as the page loads (no inline script: CSP).
document.getElementById("form-post").submit();
