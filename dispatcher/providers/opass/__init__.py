"""opass (经分助手): its client (``client``), request builders (``requests``), signing (``sign``),
return codes (``codes``), pushes (``push``) and its plug (``plug``) for the gateway registry."""
