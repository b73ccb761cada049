/** LinkedIn: live pages need a login and break; posts come from the user's data export instead. */
export const LINKEDIN_UNSUPPORTED_MESSAGE = 'use the LinkedIn data export: twin etl linkedin-export <zip>';

const LINKEDIN_HOST = /(^|\.)linkedin\.com$|^lnkd\.in$/;

export function isLinkedInUrl(url: URL): boolean {
  return LINKEDIN_HOST.test(url.hostname);
}
