"""WhatsApp "Export chat" files read as messages: the .txt, or the .zip with its media, that the
WhatsApp and WhatsApp Business apps share, in the Android and iOS layouts and the date, time and
marker wordings of several locales (`chatexport.parse` says which, and how the date order is
decided). Pure: it reads the one file it is given and nothing else, and knows nothing of the store
or of the service's events, which another module makes of its `ChatMessage` records."""
