<?php
// A PHP application protected by phpCAS (Debian's php-cas), written as phpCAS's own examples
// are, and run by PHP's built-in server with this file as its router. Configured by the
// environment the test suite starts it with:
//   PHPCAS_PROTOCOL  3.0, 2.0 or saml (CAS_VERSION_3_0, CAS_VERSION_2_0, SAML_VERSION_1_1)
//   TESSERA_HOST, TESSERA_PORT  the CAS server (phpCAS always speaks https to it, under /cas)
//   TESSERA_CA       the CA file its certificate is checked against
// The application's own base URL (phpCAS's service_base_url) is http://127.0.0.1 and the port the
// server listens on.
//
// /protected forces a login and shows the user and attributes as JSON in <pre id="whoami">;
// /maybe only checks for a session (gateway); /logout logs out of CAS and comes back to /bye.
// Every path first handles the CAS server's single-logout requests.

require_once 'CAS.php';

$protocols = [
    '3.0' => CAS_VERSION_3_0,
    '2.0' => CAS_VERSION_2_0,
    'saml' => SAML_VERSION_1_1,
];
$app_url = 'http://127.0.0.1:' . $_SERVER['SERVER_PORT'];

phpCAS::setVerbose(true);
phpCAS::client(
    $protocols[getenv('PHPCAS_PROTOCOL')],
    getenv('TESSERA_HOST'),
    (int) getenv('TESSERA_PORT'),
    '/cas',
    $app_url
);
phpCAS::setCasServerCACert(getenv('TESSERA_CA'));
if (isset($_POST['logoutRequest'])) {
    // Kept for the tests: the single-logout requests that reached the application.
    file_put_contents(
        ini_get('session.save_path') . '/logout-requests',
        $_POST['logoutRequest'] . "\n",
        FILE_APPEND
    );
}
phpCAS::handleLogoutRequests();

function page(string $id, $content): void
{
    header('Content-Type: text/html; charset=utf-8');
    echo '<!DOCTYPE html><html lang="en"><head><title>phpCAS</title></head><body>',
        '<pre id="', $id, '">', htmlspecialchars(json_encode($content)), '</pre></body></html>';
}

function whoami(): array
{
    return ['user' => phpCAS::getUser(), 'attributes' => phpCAS::getAttributes()];
}

switch (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH)) {
    case '/logout':
        phpCAS::logoutWithRedirectService($app_url . '/bye');
        break;
    case '/bye':
        page('bye', 'logged out');
        break;
    case '/maybe':
        page('whoami', phpCAS::checkAuthentication() ? whoami() : null);
        break;
    default:
        phpCAS::forceAuthentication();
        page('whoami', whoami());
}
